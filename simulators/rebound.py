"""Rebound of shifted demand: energy a flexible load reduces (or adds) in a step is paid back
in the following steps.

The payback profile is flat: an activation that changes a load by dP MW in step k changes it
by -dP / n MW in each of the steps k+1 .. k+n, where n is the kind's `payback_steps`
(`[flexibility.<kind>]`). The energy shifted and the energy paid back are equal; payback that
falls beyond the run's last step is not simulated.
"""

from __future__ import annotations

import numpy as np


class Rebound:
    """Pending payback per load of one grid (MW by step and load, consumption +)."""

    def __init__(self, n_steps: int, payback_steps: np.ndarray) -> None:
        self.n = np.asarray(payback_steps, dtype=np.int64)
        self.pending = np.zeros((n_steps + int(self.n.max(initial=0)) + 1, len(self.n)))

    def due(self, k: int) -> np.ndarray:
        """Payback of step k (MW per load, + = more consumption)."""
        return self.pending[k]

    def shift(self, k: int, dp_load: np.ndarray) -> None:
        """Book the payback of load changes `dp_load` (MW, consumption +) activated in step k."""
        for j in range(1, int(self.n.max(initial=0)) + 1):
            on = self.n >= j
            self.pending[k + j, on] -= dp_load[on] / self.n[on]
