"""Shared balancing responsibility: DSOs balance their areas, the TSO the T grid."""

from __future__ import annotations

import numpy as np
from tsodso.coordination.need import Needs
from tsodso.coordination.schemes.base import MarketSetup, Outcome, Scheme
from tsodso.coordination.schemes.registry import register
from tsodso.core.vocabulary import dso_buyer


@register
class SharedBalancing(Scheme):
    """Each DSO keeps its interface on the agreed schedule (the forecast exchange: it balances
    its area's forecast errors) and solves its congestion with its own D bids; the TSO balances
    the T-connected assets with T bids. Both markets clear at the same time, independently."""

    name = "shared_balancing"
    label = "Shared balancing responsibility"
    short = "Shared balancing"
    description = ("Each DSO must keep its interface to the transmission grid on the agreed "
                   "schedule (the forecast exchange): it balances the forecast errors in its "
                   "own area and solves its congestion with its own resources. The TSO balances "
                   "the transmission-connected assets with transmission resources. Both markets "
                   "clear at the same time, independently.")
    dso_balances_area = True
    order = 3
    step_cost = 3.5
    operator = "each DSO and the TSO, independently"

    def __init__(self, setup: MarketSetup):
        super().__init__(setup)
        self.tso_market()
        self.dpools, self.dmarket = self.d_markets(areas=True)

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        book = self.book
        d_mw = np.where(self.is_d, book.mw, 0.0)
        area_need = {dso_buyer(g): -needs.area_imbalance.get(g, 0.0) for g in self.dso_grids}
        r1 = self.dmarket.clear(self.dpools.offered(d_mw, book.price), self.dpools.price,
                                need=area_need, d_state=self.dg.state(reports))
        x1 = self.dpools.split(r1.x, d_mw)
        signed1 = book.direction * x1
        # what each DSO leaves of its area's imbalance: settled with the TSO, which balances it
        residual = {g: r1.unserved.get(dso_buyer(g), 0.0) for g in self.dso_grids}
        t_need = -needs.area_imbalance.get(self.setup.t_name, 0.0) + sum(residual.values())
        # the TSO plans on interfaces at schedule: T flows after the DSOs' activations
        flow0 = self.t_flow(reports) + self.t_shift(signed1)
        res = self.tso_stage(np.where(self.is_d, 0.0, book.mw), t_need, flow0)
        paid, _ = self.clearing_prices(r1.value[self.dpools.pool_of], None, d_mw)
        # settled at once, each slot to its grid's DSO, then grouped grid by grid (the list
        # one settlement per grid gave, ~15 passes over all slots fewer)
        rank = {g: k for k, g in enumerate(self.dso_grids)}
        acts = sorted((a for a in self.settle_stage(x1, self.dso_buyers(), paid)
                       if a.grid in rank), key=lambda a: rank[a.grid])
        acts += self.settle_tso(res)
        total = x1 + res.activated
        charges = self.imbalance_price(res) * sum(residual.values()) * self.step_h
        return Outcome(total, acts, needs.tso_need_mw - float(book.direction @ total),
                       {"congestion_rent": res.rent, "dso_imbalance_charges": charges})
