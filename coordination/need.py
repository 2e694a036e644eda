"""What the operators need in a step, read from the grids' realised state before activations.

- the TSO's balancing need: the system imbalance (realised minus forecast net injection of all
  assets; + = the system is long, so the TSO needs downward energy);
- T congestion: flows above the loading limit on transmission branches;
- each DSO's congestion and voltage-band violations.

The same functions price what stays violated after the activations (penalty costs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GridLimits:
    """Operating limits of one grid with its branch ratings."""

    vm_min_pu: float
    vm_max_pu: float
    loading_max_percent: float
    rating_mva: np.ndarray  # per branch (lines then transformers)


@dataclass
class Needs:
    step: int
    imbalance_mw: float  # + = long: downward energy needed
    area_imbalance: dict[str, float] = field(default_factory=dict)  # per grid, + = long
    overload_mva: dict[str, np.ndarray] = field(default_factory=dict)  # grid -> per branch
    undervoltage: dict[str, np.ndarray] = field(default_factory=dict)  # grid -> bool per bus
    overvoltage: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def tso_need_mw(self) -> float:
        """Net upward MW the TSO must activate to balance the system."""
        return -self.imbalance_mw


def overload_mva(loading_percent: np.ndarray, limits: GridLimits) -> np.ndarray:
    """MVA above the loading limit per branch (0 where within; NaN counts as 0)."""
    excess = (np.nan_to_num(loading_percent) - limits.loading_max_percent) / 100.0
    return np.maximum(excess, 0.0) * limits.rating_mva


def assess(step: int, reports: dict, limits: dict[str, GridLimits]) -> Needs:
    """Needs from the grids' reports (`simulators.grid.GridReport` per grid)."""
    needs = Needs(step=step, imbalance_mw=float(sum(r.imbalance_mw for r in reports.values())),
                  area_imbalance={g: float(r.imbalance_mw) for g, r in reports.items()})
    for name, r in reports.items():
        lim = limits[name]
        needs.overload_mva[name] = overload_mva(r.loading_percent, lim)
        vm = np.nan_to_num(r.vm_pu, nan=1.0)
        needs.undervoltage[name] = vm < lim.vm_min_pu
        needs.overvoltage[name] = vm > lim.vm_max_pu
    return needs


def violation_cost(needs: Needs, step_h: float, overload_eur_per_mwh: float,
                   voltage_eur_per_bus_h: float) -> float:
    """Penalty for what is violated: MVA above ratings and buses outside the voltage band."""
    mva = sum(float(v.sum()) for v in needs.overload_mva.values())
    buses = sum(int(v.sum()) for v in needs.undervoltage.values())
    buses += sum(int(v.sum()) for v in needs.overvoltage.values())
    return step_h * (mva * overload_eur_per_mwh + buses * voltage_eur_per_bus_h)
