"""No coordination: the counterfactual every scheme is measured against."""

from __future__ import annotations

import numpy as np
from tsodso.coordination.need import Needs
from tsodso.coordination.schemes.base import Outcome, Scheme
from tsodso.coordination.schemes.registry import register


@register
class NoCoordination(Scheme):
    """No market: nothing is activated; imbalance and violations stay (the counterfactual)."""

    name = "none"
    label = "No coordination (counterfactual)"
    short = "No coordination"
    description = ("Nobody buys flexibility. Forecast errors stay as unresolved imbalance and "
                   "grid problems stay as violations; both are priced with the scenario's "
                   "penalties. It is the reference the other schemes are measured against.")
    counterfactual = True
    linear_d = False
    order = 0
    step_cost = 1.0

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        return Outcome(np.zeros(len(self.book)), [], needs.tso_need_mw)
