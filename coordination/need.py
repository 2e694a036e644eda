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


def overload_mva(loading_percent: np.ndarray, loading_max_percent: np.ndarray | float,
                 rating_mva: np.ndarray | float) -> np.ndarray:
    """MVA above the loading limit per branch (0 where within; NaN counts as 0)."""
    excess = (np.nan_to_num(loading_percent) - loading_max_percent) / 100.0
    return np.maximum(excess, 0.0) * rating_mva


def assess(step: int, reports: dict, limits: dict[str, GridLimits]) -> Needs:
    """Needs from the grids' reports (`simulators.grid.GridReport` per grid)."""
    return Assessor(limits)(step, reports)


class Assessor:
    """`assess` for the same grids step after step: the reports of all grids are checked as
    one stacked array against per-element limits built once (the same element-wise values
    as grid by grid; each grid's arrays in `Needs` are slices of the stacked ones)."""

    def __init__(self, limits: dict[str, GridLimits]) -> None:
        self.limits = limits
        self._key: tuple = ()

    def _stack(self, key: tuple) -> None:
        """Per-bus and per-branch limits of the grids and sizes in `key`."""
        lim = self.limits
        self._key = key
        self._vm_min = np.concatenate([np.full(nb, lim[g].vm_min_pu) for g, nb, _ in key])
        self._vm_max = np.concatenate([np.full(nb, lim[g].vm_max_pu) for g, nb, _ in key])
        self._ld_max = np.concatenate([np.full(nl, lim[g].loading_max_percent)
                                       for g, _, nl in key])
        self._rating = np.concatenate([np.broadcast_to(np.asarray(lim[g].rating_mva, dtype=float),
                                                       (nl,)) for g, _, nl in key])
        bus = np.cumsum([0, *(nb for _, nb, _ in key)])
        branch = np.cumsum([0, *(nl for _, _, nl in key)])
        self._slices = [(g, slice(int(bus[i]), int(bus[i + 1])),
                         slice(int(branch[i]), int(branch[i + 1]))) for i, (g, _, _) in
                        enumerate(key)]

    def __call__(self, step: int, reports: dict) -> Needs:
        key = tuple((g, len(r.vm_pu), len(r.loading_percent)) for g, r in reports.items())
        if key != self._key:
            self._stack(key)
        needs = Needs(step=step,
                      imbalance_mw=float(sum(r.imbalance_mw for r in reports.values())),
                      area_imbalance={g: float(r.imbalance_mw) for g, r in reports.items()})
        loading = np.concatenate([r.loading_percent for r in reports.values()])
        overload = overload_mva(loading, self._ld_max, self._rating)
        vm = np.nan_to_num(np.concatenate([r.vm_pu for r in reports.values()]), nan=1.0)
        under = vm < self._vm_min
        over = vm > self._vm_max
        outside = np.maximum(vm - self._vm_max, 0.0) + np.maximum(self._vm_min - vm, 0.0)
        for g, bus, branch in self._slices:
            needs.overload_mva[g] = overload[branch]
            needs.undervoltage[g] = under[bus]
            needs.overvoltage[g] = over[bus]
            needs.voltage_excess_pu[g] = outside[bus]
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

