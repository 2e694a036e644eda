"""Centralized AS market: the TSO buys from T- and D-connected resources in one market."""

from __future__ import annotations

from typing import Any

from tsodso.coordination.need import Needs
from tsodso.coordination.schemes.base import MarketSetup, Outcome, Scheme
from tsodso.coordination.schemes.registry import register


@register
class Centralized(Scheme):
    """The TSO buys from T and D resources in one market with T constraints (PTDF); D grids
    are ignored unless the DSOs prequalify D bids (`market.prequalification`): then D offers
    are capped to what the D grids can take without violating their limits."""

    name = "centralized"
    label = "Centralized market"
    short = "Centralized"
    description = ("The TSO runs one market and buys from transmission- and "
                   "distribution-connected resources alike, respecting only the transmission "
                   "grid's limits (DC power flow). Distribution grids are not checked unless "
                   "DSO prequalification is switched on, which caps distribution offers to what "
                   "the distribution grids can take.")
    order = 1
    step_cost = 3.0
    operator = "the TSO"

    def __init__(self, setup: MarketSetup):
        super().__init__(setup)
        self.tso_market()
        self.prequalify = setup.market.prequalification

    @classmethod
    def notes(cls, scenario: Any) -> str:
        on = scenario.market.prequalification
        return f"In this run DSO prequalification is {'on' if on else 'off'}."

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        mw = self.book.mw.copy()
        if self.prequalify:
            mw = self.dg.deliverable(mw, self.dg.state(reports), no_worse=False)
        res = self.tso_stage(mw, needs.tso_need_mw, self.t_flow(reports))
        return Outcome(res.activated, self.settle_tso(res), res.unserved_mw,
                       {"congestion_rent": res.rent})
