"""Growth of the grid's assets per kind and level, applied once at set-up.

A scenario's `[growth.<kind>]` section gives a factor per level (`D`: the DSOs' MV grids,
`T`: the TSO's HV grid) by which every element of that asset kind (tsodso.core.assets) is
scaled: its rating (pandapower's p_mw, q_mvar, sn_mva; storage also its power limits and
energy) and its profile values, so that its time series keep their shape and grow with the
rating. `growth.d_stress` scales the D-level growth away from today's grid:

    factor_D(kind) = max(0, 1 + d_stress * (growth.<kind>.D - 1))
    factor_T(kind) = growth.<kind>.T

so d_stress = 0 is the grid as SimBench gives it, 1 the scenario's D growth as written, and 2
twice the added D capacity. With every factor 1 (the defaults) the grid and profiles are
returned untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tsodso.core.assets import KINDS, classify
from tsodso.scenarios.cache import MappedProfile
from tsodso.scenarios.schema import Scenario

#: The columns scaled per element table: ratings and static set-points.
SCALED: dict[str, tuple[str, ...]] = {
    "sgen": ("p_mw", "q_mvar", "sn_mva"),
    "load": ("p_mw", "q_mvar", "sn_mva"),
    "storage": ("p_mw", "q_mvar", "sn_mva", "max_p_mw", "min_p_mw", "max_e_mwh",
                "min_e_mwh"),
}
#: The label classify() reads per table (storage has none: one kind).
LABEL = {"sgen": "type", "load": "profile"}


@dataclass(frozen=True)
class ScaledProfile(MappedProfile):
    """A memory-mapped profile whose columns are multiplied by `scale` when read (the cached
    file is shared between runs and stays untouched)."""

    scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    def _read(self, rows) -> np.ndarray:
        return super()._read(rows) * self.scale


def factors(scenario: Scenario) -> dict[tuple[str, str], float]:
    """(kind, level) -> the factor applied to that kind's elements at that level."""
    g = scenario.growth
    out = {}
    for k in KINDS:
        sec = getattr(g, k.name)
        out[(k.name, "D")] = max(0.0, 1.0 + g.d_stress * (sec.D - 1.0))
        out[(k.name, "T")] = sec.T
    return out


def element_factors(net, table: str, level_of_bus, fac: dict[tuple[str, str], float]
                    ) -> np.ndarray:
    """Factor of each element of `table` from its kind and the level of its bus."""
    df = net[table]
    labels = df[LABEL[table]] if table in LABEL and LABEL[table] in df else [None] * len(df)
    kinds = classify(table, labels)
    levels = [level_of_bus(int(b)) for b in df.bus]
    return np.array([fac[(k, lv)] for k, lv in zip(kinds, levels, strict=True)], dtype=float)


def apply_growth(scenario: Scenario, net, profiles: dict, interfaces: list[int] | None):
    """Scale `net` (in place) and return the profiles with the grown columns scaled.

    The level of an element is the level of its bus in the TSO-DSO split at `interfaces`
    (the T grid is the one holding the ext_grid)."""
    fac = factors(scenario)
    if all(v == 1.0 for v in fac.values()):
        return profiles
    from tsodso.scenarios.split import bus_grids

    t_name, grid_of = bus_grids(net, interfaces)

    def level_of_bus(b: int) -> str:
        return "T" if grid_of.get(b, t_name) == t_name else "D"

    out = dict(profiles)
    for table, cols in SCALED.items():
        if not len(net[table]):
            continue
        f = element_factors(net, table, level_of_bus, fac)
        if np.all(f == 1.0):
            continue
        scale = pd.Series(f, index=net[table].index)
        for col in cols:
            if col in net[table]:
                net[table][col] = net[table][col].astype(float) * f
        for (ptable, pcol), df in profiles.items():
            if ptable != table or not df.shape[1]:
                continue
            s = scale.reindex(df.columns).fillna(1.0).to_numpy(float)
            if isinstance(df, MappedProfile):
                base = s if not isinstance(df, ScaledProfile) else s * df.scale
                out[(ptable, pcol)] = ScaledProfile(df.values, df.columns, base)
            else:
                out[(ptable, pcol)] = df * s
    return out
