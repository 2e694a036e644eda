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
from tsodso.core.vocabulary import UNSERVED_KEYS


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
    voltage_excess_pu: dict[str, np.ndarray] = field(default_factory=dict)  # grid -> pu outside
    #                                                                  the band, per bus (>= 0)

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
        needs.voltage_excess_pu[name] = (np.maximum(vm - lim.vm_max_pu, 0.0)
                                         + np.maximum(lim.vm_min_pu - vm, 0.0))
    return needs


def unserved(needs: Needs, unserved_mw: float, level: dict[str, str],
             step_h: float) -> dict[str, float]:
    """What stays unserved in a step (`needs` assessed after the market; `unserved_mw` the
    balancing need the market left): MWh of imbalance, MWh (MVA x h) above branch ratings and
    pu x h outside the voltage band, per level (T, D) — the quantities the social cost values.
    A power flow that did not converge (NaN) counts as nothing unserved there."""
    out = dict.fromkeys(UNSERVED_KEYS, 0.0)
    out["imbalance_mwh"] = abs(float(unserved_mw)) * step_h
    for grid, mva in needs.overload_mva.items():
        lv = level[grid].lower()
        out[f"overload_{lv}_mwh"] += float(mva.sum()) * step_h
        out[f"voltage_{lv}_puh"] += float(needs.voltage_excess_pu[grid].sum()) * step_h
    return out


def unserved_value(quantities: dict[str, float], penalties) -> dict[str, float]:
    """EUR value of unserved quantities at the scenario's per-unit values (`penalties`:
    imbalance EUR/MWh, overload EUR/MWh, voltage EUR per pu x h) — the same values the markets
    minimise on their linear models."""
    return {
        "imbalance": quantities["imbalance_mwh"] * penalties.imbalance_eur_per_mwh,
        "overload_t": quantities["overload_t_mwh"] * penalties.overload_eur_per_mwh,
        "overload_d": quantities["overload_d_mwh"] * penalties.overload_eur_per_mwh,
        "voltage_t": quantities["voltage_t_puh"] * penalties.voltage_eur_per_pu_h,
        "voltage_d": quantities["voltage_d_puh"] * penalties.voltage_eur_per_pu_h,
    }

