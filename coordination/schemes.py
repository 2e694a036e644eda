"""Coordination schemes: who buys which flexibility, in which market, under which constraints.

Each scheme turns the step's bid book and needs into an `Outcome`: MW activated per bid slot,
the buyer of each slot and the price paid, and the balancing need left unserved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coordination.bid import BidBook
from coordination.centralized import CentralizedMarket, Penalties
from coordination.need import Needs
from coordination.pooling import Pools
from coordination.settlement import settle
from results.writer import Activation

SCHEMES = ("none", "centralized")


@dataclass
class Outcome:
    activated: np.ndarray  # MW per slot (all buyers together)
    activations: list[Activation]  # settled: who bought what, at which price
    unserved_mw: float  # signed balancing need left unserved
    conflicts: list = field(default_factory=list)


@dataclass
class TransmissionModel:
    """What the TSO's market knows of its grid: PTDFs and branch limits in PTDF row order."""

    ptdf: np.ndarray  # (rows, PTDF columns)
    rows_of_report: np.ndarray  # PTDF row -> position in the T grid's branch results
    limit_mw: np.ndarray  # per PTDF row


class NoCoordination:
    """No market: nothing is activated; imbalance and violations stay (the counterfactual)."""

    name = "none"

    def __init__(self, book: BidBook, **_: object):
        self.n = len(book)

    def clear(self, book: BidBook, needs: Needs, t_flow_mw: np.ndarray) -> Outcome:
        return Outcome(np.zeros(self.n), [], needs.tso_need_mw)


class Centralized:
    """The TSO buys from T and D resources in one market with T constraints (PTDF); D grids
    are ignored."""

    name = "centralized"

    def __init__(self, book: BidBook, tmodel: TransmissionModel, penalties: Penalties,
                 step_h: float, pricing: str):
        self.tmodel = tmodel
        self.pricing = pricing
        self.step_h = step_h
        self.pools = Pools(book)
        self.market = CentralizedMarket(self.pools.book, tmodel.ptdf, penalties, step_h)

    def clear(self, book: BidBook, needs: Needs, t_flow_mw: np.ndarray) -> Outcome:
        flow0 = t_flow_mw[self.tmodel.rows_of_report]
        mw, price = self.pools.offered(book.mw, book.price)
        res = self.market.clear(mw, price, needs.tso_need_mw, flow0, self.tmodel.limit_mw)
        res.activated = self.pools.split(res.activated, book.mw)
        acts = settle(book, res, "TSO", self.pricing, self.step_h)
        return Outcome(res.activated, acts, res.unserved_mw)


def make_scheme(name: str, book: BidBook, tmodel: TransmissionModel, penalties: Penalties,
                step_h: float, pricing: str):
    if name == "none":
        return NoCoordination(book)
    if name == "centralized":
        return Centralized(book, tmodel, penalties, step_h, pricing)
    raise ValueError(f"unknown scheme '{name}' (known: {', '.join(SCHEMES)})")
