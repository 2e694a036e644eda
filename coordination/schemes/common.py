"""Common TSO-DSO market: one joint market with T and all D constraints."""

from __future__ import annotations

from typing import Any

import numpy as np
from tsodso.coordination.need import Needs
from tsodso.coordination.pooling import ZonePools
from tsodso.coordination.schemes.base import MarketSetup, Outcome, Scheme
from tsodso.coordination.schemes.registry import register
from tsodso.core.records import Activation
from tsodso.core.vocabulary import TSO


@register
class Common(Scheme):
    """One joint market for the TSO's and all DSOs' needs over all bids, with T and all D
    constraints, minimising total cost. A D-connected activation is the DSO's when it relieves
    a violation of its grid's limits that existed before the market; all others are the TSO's.

    With `market.common_decomposed` the DSOs' constraints are cleared first (each DSO's local
    market, as in `local`), and the joint market then clears the rest with the D grids held
    to "no new or worse violation"."""

    name = "common"
    label = "Common TSO–DSO market"
    short = "Common"
    description = ("One joint market serves the TSO and all DSOs with no priority, with the "
                   "transmission and all distribution grid limits at once, minimising total "
                   "cost. A distribution-connected activation counts as the DSO's purchase when "
                   "it relieves a violation that existed in its grid before the market; all "
                   "others are the TSO's.")
    order = 4
    parties: tuple[str, ...] = ()

    def __init__(self, setup: MarketSetup):
        from tsodso.coordination.market import FlexMarket

        super().__init__(setup)
        self.pools = ZonePools(self.book, self.dg.model.zone, self.dg.model.capability)
        self.rows = self.dg.rows(self.pools)
        self.market = FlexMarket(
            self.pools.direction, self.pools.t_bus, self.step_h,
            self.pen.imbalance_eur_per_mwh, self.pen.overload_eur_per_mwh,
            self.pen.voltage_eur_per_bus_h, ptdf=self.tm.ptdf, drows=self.rows,
            areas={"system": np.arange(self.pools.n)}, parties=list(self.parties))
        self.decomposed = setup.market.common_decomposed
        if self.decomposed:
            self.dpools, self.dmarket = self.d_markets(areas=False)

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
        k = needs.step
        party_need = {b: -float(self.setup.brp_imbalance[b][k]) for b in self.parties}
        r = self.market.clear(self.pools.offered(mw, book.price), self.pools.price,
                              need={"system": need}, t_flow0=flow0, t_limit=self.tm.limit_mw,
                              d_state=state, no_worse=self.decomposed, party_need=party_need)
        x = self.pools.split(r.x, mw)
        relieving = self.dg.relieving_pools(self.pools, self.rows, state)
        buyer = np.where(relieving[self.pools.pool_of] & self.is_d, self.dso_buyers(), TSO)
        price = r.value[self.pools.pool_of]
        rest = x.copy()
        for party, y in r.party_x.items():
            share = np.divide(y, r.x, out=np.zeros_like(y), where=r.x > 0)
            bought = x * share[self.pools.pool_of]
            rest -= bought
            acts += self.settle_stage(bought, party, price)
        acts += self.settle_stage(np.maximum(rest, 0.0), buyer, price)
        total = x1 + x
        return Outcome(total, acts, needs.tso_need_mw - float(book.direction @ total))
