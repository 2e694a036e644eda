"""Local AS market: each DSO buys first in its own market; the TSO buys from what is left."""

from __future__ import annotations

import numpy as np
from tsodso.coordination.need import Needs
from tsodso.coordination.schemes.base import MarketSetup, Outcome, Scheme
from tsodso.coordination.schemes.registry import register


@register
class Local(Scheme):
    """Each DSO first clears its own needs in its local market (its D bids, its D constraints);
    what is left of the D bids goes to the TSO's market, aggregated per interface and capped to
    what the D grid can carry without new violations; the TSO then clears its need (which now
    includes the balance the DSOs' activations moved) with T bids and those offers."""

    name = "local"
    label = "Local markets"
    short = "Local"
    description = ("Each DSO first buys what its own grid needs in a local market (its "
                   "distribution resources, its grid limits). Offers the DSOs did not use are "
                   "passed to the TSO's market, capped to what the distribution grid can carry "
                   "without new violations; the TSO then buys to balance the system, including "
                   "the balance the DSOs' purchases moved.")
    order = 2
    step_cost = 4.2
    operator = "each DSO (its local market), then the TSO"

    def __init__(self, setup: MarketSetup):
        super().__init__(setup)
        self.tso_market()
        self.dpools, self.dmarket = self.d_markets(areas=False)

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        x1, need, flow0, after, residual, acts = self.dso_first(needs, reports,
                                                                self.dg.state(reports))
        offers = np.where(self.is_d, self.dg.deliverable(residual, after, no_worse=True),
                          residual)
        res = self.tso_stage(offers, need, flow0)
        acts += self.settle_tso(res)
        return Outcome(x1 + res.activated, acts, res.unserved_mw, {"congestion_rent": res.rent})
