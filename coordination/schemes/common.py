"""Common TSO-DSO market: one joint market with T and all D constraints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from tsodso.coordination.need import Needs
from tsodso.coordination.pooling import ZonePools
from tsodso.coordination.schemes.base import MarketSetup, Outcome, Scheme
from tsodso.coordination.schemes.registry import register
from tsodso.core.records import Activation

if TYPE_CHECKING:
    from tsodso.coordination.market import DState, FlexMarket


@register
class Common(Scheme):
    """One joint market for the TSO's and all DSOs' needs over all bids, with T and all D
    constraints, minimising the social cost on its linear model. Who pays follows cost
    causation from the duals: the TSO for what its balance and T rows are worth to the
    activated MW, each DSO for its D rows.

    With `market.common_decomposed` the DSOs' constraints are cleared first (each DSO's local
    market, as in `local`), and the joint market then clears the rest with the D grids held
    to "no new or worse violation"."""

    name = "common"
    label = "Common TSO–DSO market"
    short = "Common"
    description = ("One joint market serves the TSO and all DSOs with no priority, with the "
                   "transmission and all distribution grid limits at once, minimising the "
                   "social cost. Who pays follows cost causation from the market's prices: the "
                   "TSO pays for what its balance and transmission limits are worth to the "
                   "activated flexibility, each DSO for what its grid's limits are worth.")
    order = 4
    step_cost = 4.0
    operator = "the TSO and the DSOs jointly"
    joint_balance = True

    def __init__(self, setup: MarketSetup):
        super().__init__(setup)
        self.pools = ZonePools(self.book, self.dg.model.zone, self.dg.model.capability)
        self.rows = self.dg.rows(self.pools)
        self.market = self.joint_market()
        self.decomposed = setup.market.common_decomposed
        if self.decomposed:
            self.dpools, self.dmarket = self.d_markets(areas=False)

    def joint_market(self, parties: tuple[str, ...] = (), system: bool = True,
                     pen_party: float = 0.0) -> FlexMarket:
        """An LP over the pooled offers with T and all D rows: the system balance (`system`)
        and/or market parties buying against their own positions (`parties`, whose open
        positions are valued at `pen_party`)."""
        from tsodso.coordination.market import VOLTAGE_STEP_PU, FlexMarket

        pen = self.pen
        areas = {"system": np.arange(self.pools.n)} if system else {}
        market = FlexMarket(self.pools.direction, self.pools.t_bus, self.step_h,
                            pen.imbalance_eur_per_mwh if system else pen_party,
                            pen.overload_eur_per_mwh,
                            pen.voltage_eur_per_pu_h * VOLTAGE_STEP_PU,
                            ptdf=self.tm.ptdf, drows=self.rows, areas=areas,
                            parties=list(parties), party_penalty=pen_party)
        self.d_lps.append((market, self.pools))
        return market

    @classmethod
    def notes(cls, scenario: Any) -> str:
        if scenario.market.common_decomposed:
            return ("In this run the decomposed variant was used: DSO constraints first, then "
                    "the joint clearing.")
        return ""

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        book = self.book
        state = self.dg.state(reports)
        need = needs.tso_need_mw
        flow0 = self.t_flow(reports)
        mw = book.mw
        x1 = np.zeros(len(book))
        acts: list[Activation] = []
        if self.decomposed:
            x1, need, flow0, state, mw, acts = self.dso_first(needs, reports, state)
        x, more, rent, _ = self.joint_stage(mw, need, flow0, state, self.decomposed)
        total = x1 + x
        return Outcome(total, acts + more, needs.tso_need_mw - float(book.direction @ total),
                       {"congestion_rent": rent})

    def joint_stage(self, mw: np.ndarray, need: float, flow0: np.ndarray,
                    state: dict[str, DState], no_worse: bool
                    ) -> tuple[np.ndarray, list[Activation], float, float]:
        """Clear the joint market on offers `mw`: MW per slot, the activations settled by
        cost causation, the congestion rent and the balance's marginal price (EUR/MWh up)."""
        book = self.book
        r = self.market.clear(self.pools.offered(mw, book.price), self.pools.price,
                              need={"system": need}, t_flow0=flow0, t_limit=self.tm.limit_mw,
                              d_state=state, no_worse=no_worse)
        x = self.pools.split(r.x, mw)
        of = self.pools.pool_of
        paid, parts = self.clearing_prices(r.value[of], {c: p[of] for c, p in r.parts.items()},
                                           mw)
        acts: list[Activation] = []
        for buyer, share in self.cost_causation(x, parts, self.dso_grids).items():
            acts += self.settle_stage(x * share, buyer, paid)
        lam = r.balance_price.get("system", 0.0)
        return x, acts, self.congestion_rent(x, paid, lam), lam
