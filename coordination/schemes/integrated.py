"""Integrated flexibility market: the common market where BRPs trade too."""

from __future__ import annotations

from typing import Any

from tsodso.coordination.schemes.base import MarketSetup
from tsodso.coordination.schemes.common import Common
from tsodso.coordination.schemes.registry import register


@register
class Integrated(Common):
    """The common market run by an independent market operator, where balance responsible
    parties also trade: each BRP (RES producers, suppliers) buys flexibility against its own
    portfolio imbalance instead of paying the imbalance price, so parties may buy in opposite
    directions; the TSO buys what balancing is left and the DSOs their constraints. Without
    BRP trading (`market.brp_trading = false`) it is the common market."""

    name = "integrated"
    label = "Integrated flexibility market"
    short = "Integrated"
    description = ("The common market run by an independent operator in which balance "
                   "responsible parties (BRPs) also trade: each BRP may buy flexibility against "
                   "its own portfolio imbalance instead of paying the imbalance price; the TSO "
                   "buys the balancing that is left and the DSOs their grid needs.")
    order = 5

    def __init__(self, setup: MarketSetup):
        self.parties = tuple(setup.brp_imbalance) if setup.market.brp_trading else ()
        super().__init__(setup)

    @classmethod
    def notes(cls, scenario: Any) -> str:
        return f"In this run BRP trading is {'on' if scenario.market.brp_trading else 'off'}."
