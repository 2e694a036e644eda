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
    """Pending payback per load (MW by step and load, consumption +).

    Only the steps that can still be due are held: a ring of ``max(payback_steps) + 1`` rows
    (step k in row ``k % rows``), so a run of any length holds the same few rows; steps are
    asked for in order, and a row is cleared when the run has moved past its step."""

    def __init__(self, n_steps: int, payback_steps: np.ndarray) -> None:
        self.n = np.asarray(payback_steps, dtype=np.int64)
        self._max = int(self.n.max(initial=0))
        self.pending = np.zeros((self._max + 1, len(self.n)))
        self._first = 0  # the earliest step the ring still holds
        # per payback step j: the loads paid back over at least j steps, and their 1/n
        self._on = [np.flatnonzero(self.n >= j) for j in range(1, self._max + 1)]
        self._div = [self.n[on] for on in self._on]

    def _advance(self, k: int) -> None:
        """Forget the steps before k (their rows are reused for k + 1 .. k + max)."""
        if k < self._first:
            raise ValueError(f"step {k} is before step {self._first}, already paid back")
        rows = len(self.pending)
        for s in range(self._first, min(k, self._first + rows)):
            self.pending[s % rows] = 0.0
        self._first = k

    def due(self, k: int) -> np.ndarray:
        """Payback of step k (MW per load, + = more consumption)."""
        self._advance(k)
        return self.pending[k % len(self.pending)]

    def shift(self, k: int, dp_load: np.ndarray) -> None:
        """Book the payback of load changes `dp_load` (MW, consumption +) activated in step k."""
        self._advance(k)
        rows = len(self.pending)
        for j, (on, div) in enumerate(zip(self._on, self._div, strict=True), start=1):
            self.pending[(k + j) % rows, on] -= dp_load[on] / div
