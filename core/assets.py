"""The asset kinds: which grid elements belong to each, what flexibility they can offer, and
the scenario defaults of their forecast error and offers, with sources.

This table is the one place that defines a kind. The scenario schema builds its
`[forecast.<kind>]` and `[flexibility.<kind>]` sections from it, the forecast model takes its
default errors from it, and the providers make one bid slot per kind, bus and direction.
Adding a kind of an existing element table (say heat pumps among the loads, matched by their
SimBench load profile) is one entry here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: pandapower element tables that carry flexible assets.
TABLES: tuple[str, ...] = ("sgen", "load", "storage")


@dataclass(frozen=True)
class AssetKind:
    """One kind of asset."""

    name: str
    table: str  # pandapower element table: sgen, load or storage
    directions: tuple[int, ...]  # offered directions: -1 = curtailment only; (1, -1) both
    match: tuple[str, ...]  # labels of the elements of this kind (sgen: `type`, load:
    #                         `profile`); "X*" is a prefix; () takes the rest of the table
    error: tuple[float, float, float]  # default forecast error: sigma (fraction of rating),
    #                                    rho (AR(1) per 15 min), common share of the variance
    offer: tuple[float, float, float]  # default offer: share of capability, EUR/MWh up, down
    source: str  # where the error defaults come from
    payback_steps: int = 0  # loads: steps over which a shifted energy is paid back (rebound)


KINDS: tuple[AssetKind, ...] = (
    AssetKind(
        "wind", "sgen", (-1,), ("Wind*",), (0.05, 0.95, 0.6), (0.5, 0.0, 35.0),
        "Wind, 15 min to 1 h ahead: single-farm RMSE ~4-6 % of capacity; errors persist for "
        "hours (rho 0.95 per 15 min ~ 5 h e-folding) and weather fronts hit neighbouring farms "
        "together."),
    AssetKind(
        "pv", "sgen", (-1,), ("PV*", "lv_RES"), (0.04, 0.9, 0.5), (0.5, 0.0, 45.0),
        "PV, 15 min to 1 h ahead: RMSE ~3-5 % of installed power, driven by cloud passages "
        "that are shorter-lived than wind errors (rho 0.9 ~ 2.5 h) and partly regional."),
    AssetKind(
        "other_res", "sgen", (-1,), (), (0.01, 0.9, 0.0), (0.2, 0.0, 60.0),
        "Biomass, hydro and other SimBench RES: steady, nearly dispatchable output, ~1 % of "
        "capacity, plant-specific."),
    AssetKind(
        "heat_pump", "load", (1, -1), ("Air*", "Soil*"), (0.03, 0.9, 0.3), (0.3, 60.0, 20.0),
        "Heat pumps (SimBench load profiles Air_* and Soil_*): temperature-driven like other "
        "load; the building's heat capacity lets them shift consumption for an hour or two, "
        "which is then paid back (rebound over 8 steps of 15 min).", payback_steps=8),
    AssetKind(
        "load", "load", (1, -1), (), (0.03, 0.9, 0.3), (0.1, 120.0, 25.0),
        "Load, 15 min to 1 h ahead: ~3 % of peak for a single MV/HV connection (system-level "
        "error is 1-2 %); the temperature-driven part is shared. Flexible load is shifted "
        "demand: what it reduces (or adds) is paid back over the next 4 steps.", payback_steps=4),
    AssetKind(
        "storage", "storage", (1, -1), (), (0.0, 0.0, 0.0), (0.8, 70.0, 15.0),
        "Storage: scheduled by its operator and executed exactly, no forecast error."),
)

#: Kinds whose offer price follows their state (storage: the state of charge), step by step.
STATE_PRICED: tuple[str, ...] = tuple(k.name for k in KINDS if k.table == "storage")

BY_NAME: dict[str, AssetKind] = {k.name: k for k in KINDS}


def kinds_of_table(table: str) -> tuple[AssetKind, ...]:
    return tuple(k for k in KINDS if k.table == table)


def _matches(label: str, patterns: Iterable[str]) -> bool:
    return any(label.startswith(p[:-1]) if p.endswith("*") else label == p for p in patterns)


def classify(table: str, labels: Iterable[object]) -> np.ndarray:
    """The kind of each element of `table` from its label (sgen `type`, load `profile`): the
    first kind whose `match` fits, else the table's catch-all kind (the one without `match`)."""
    kinds = kinds_of_table(table)
    rest = next((k.name for k in kinds if not k.match), None)
    out = []
    for label in labels:
        text = "" if label is None else str(label)
        kind = next((k.name for k in kinds if k.match and _matches(text, k.match)), rest)
        if kind is None:
            raise ValueError(f"no asset kind of table {table!r} matches {text!r}")
        out.append(kind)
    return np.array(out, dtype=object).astype(str) if out else np.zeros(0, dtype=str)
