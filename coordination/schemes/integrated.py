"""Integrated flexibility market: one market run by an independent market operator in which
balance responsible parties trade too."""

from __future__ import annotations

from typing import Any

import numpy as np
from tsodso.coordination.need import Needs
from tsodso.coordination.schemes.base import MarketSetup, Outcome
from tsodso.coordination.schemes.common import Common
from tsodso.coordination.schemes.registry import register
from tsodso.core.records import Activation


@register
class Integrated(Common):
    """An independent market operator runs one market for everybody. Balance responsible parties
    (RES producers, suppliers) trade first, each against its own portfolio imbalance: a short
    BRP buys upward flexibility, a long one downward, from any offer cheaper than the imbalance
    price it expects (`market.brp_expected_imbalance_price`), without new or worse T or D
    violations (the BRPs' market does not redispatch the grids: every activation it makes is
    bought by a BRP of its direction, no counter-trade that nobody pays for; BRPs needing the
    same direction share its purchase in proportion to their needs). BRPs do not net their
    positions with each other, so they may buy in opposite directions. The TSO and the DSOs
    then clear what is left in the joint market (as in `common`), on the remaining offers.
    What a BRP leaves open is settled with the TSO at the TSO's balancing price (a transfer).
    Without BRP trading it is the common market."""

    name = "integrated"
    label = "Integrated flexibility market"
    short = "Integrated"
    description = ("An independent market operator runs one market in which balance "
                   "responsible parties (BRPs) trade as well as the TSO and the DSOs. Each BRP "
                   "first buys flexibility against its own portfolio imbalance when an offer is "
                   "cheaper than the imbalance price it expects; BRPs do not net their "
                   "positions, so they can buy in opposite directions. The TSO and the DSOs "
                   "then buy what balancing and grid needs are left, as in the common market. "
                   "Open BRP positions are settled with the TSO at its balancing price.")
    order = 5
    step_cost = 6.5
    operator = "an independent market operator"

    def __init__(self, setup: MarketSetup):
        super().__init__(setup)
        self.parties = tuple(setup.brp_imbalance) if setup.market.brp_trading else ()
        if self.parties:
            self.brp_market = self.joint_market(
                parties=self.parties, system=False,
                pen_party=float(setup.market.brp_expected_imbalance_price))
        # both markets screen by the box reach alone (`MarketLP.near_share`), not by the
        # last-solution rule: their optima are degenerate (equal-price offers at different
        # buses, e.g. two HV storage units at 7.5 EUR/MWh in the BRP stage), and the rule's
        # other rows made HiGHS return another equal-cost vertex, which moved integrated's
        # crossover KPIs (dgrid, studies/crossover.toml) by up to 3.3e-7 relative (0.71 EUR);
        # screening only the BRP market by reach still moved d_stress 2 by 1.5e-8
        for market, _ in self.d_lps:
            market.lp.near_share = None

    @classmethod
    def notes(cls, scenario: Any) -> str:
        if not scenario.market.brp_trading:
            return "In this run BRP trading is off: the market is the common market."
        return (f"In this run BRP trading is on; BRPs expect an imbalance price of "
                f"{scenario.market.brp_expected_imbalance_price:g} EUR/MWh.")

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        if not self.parties:
            return super().clear(needs, reports)
        book = self.book
        state = self.dg.state(reports)
        flow0 = self.t_flow(reports)
        k = needs.step
        party_need = {b: -float(self.setup.brp_imbalance[b][k]) for b in self.parties}
        r = self.brp_market.clear(self.pools.offered(book.mw, book.price), self.pools.price,
                                  t_flow0=flow0, t_limit=self.tm.limit_mw, d_state=state,
                                  no_worse=True, t_no_worse=True, party_need=party_need)
        x1 = self.pools.split(r.x, book.mw)
        of = self.pools.pool_of
        paid, parts = self.clearing_prices(r.value[of], {c: p[of] for c, p in r.parts.items()},
                                           book.mw)
        acts: list[Activation] = []
        bought = {}
        for party, y in r.party_x.items():
            share = np.divide(y, r.x, out=np.zeros_like(y), where=r.x > 0)
            mine = x1 * share[of]
            bought[party] = float(book.direction @ mine)
            acts += self.settle_stage(mine, party, paid)
        # the joint market on what the BRPs left: their purchases moved balance, flows, D grids
        signed1 = book.direction * x1
        need = needs.tso_need_mw - float(signed1.sum())
        flow1 = flow0 + self.slot_ptdf @ signed1  # the gather kept: 3.7 -> 0.2 ms, same sums
        after = self.dg.after(state, signed1)
        x2, more, rent2, lam = self.joint_stage(np.maximum(book.mw - x1, 0.0), need, flow1,
                                                after, no_worse=False)
        total = x1 + x2
        open_mwh = sum(party_need[b] - bought.get(b, 0.0) for b in self.parties) * self.step_h
        charges = self.scarcity_clip(lam) * open_mwh
        return Outcome(total, acts + more, needs.tso_need_mw - float(book.direction @ total),
                       {"congestion_rent": self.congestion_rent(x1, paid, lam) + rent2,
                        "brp_imbalance_charges": charges})
