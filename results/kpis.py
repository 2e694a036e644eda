"""Key performance indicators of a run, computed from its results file.

Everything is read in slabs of rows, so a year of quarter-hours never has to fit in memory.
Works on complete and on interrupted files (only the steps written count).
"""

from __future__ import annotations

import h5py
import numpy as np
from tsodso.core.vocabulary import COST_KEYS, DSO_PREFIX, RES_KINDS, TSO
from tsodso.results.read import (
    attr_value,
    count_violations,
    slabs,
    steps_written,
    table_slabs,
)

#: KPI name -> units, in the order they are written to /kpis.
KPI_UNITS: dict[str, str] = {
    "total_cost_eur": "EUR",
    "tso_cost_eur": "EUR",
    "dso_cost_eur": "EUR",
    "brp_cost_eur": "EUR",
    "imbalance_cost_eur": "EUR",
    "violation_cost_eur": "EUR",
    "activated_mwh": "MWh",
    "cross_level_mwh": "MWh",
    "conflicts": "1",
    "conflict_mwh": "MWh",
    "unresolved_imbalance_mwh": "MWh",
    "voltage_violation_bus_steps": "1",
    "overload_branch_steps": "1",
    "curtailment_mwh": "MWh",
}
#: KPI name -> what it measures, one plain sentence (export and documentation).
KPI_DESCRIPTIONS: dict[str, str] = {
    "total_cost_eur": "Sum of every cost component over the steps: activations bought by the "
                      "TSO, the DSOs and the BRPs, the imbalance left and the violations left.",
    "tso_cost_eur": "What the TSO paid for the flexibility it activated.",
    "dso_cost_eur": "What the DSOs paid for the flexibility they activated, all DSO grids "
                    "together.",
    "brp_cost_eur": "What balance responsible parties paid for flexibility bought against "
                    "their own imbalance.",
    "imbalance_cost_eur": "Penalty for the system imbalance the market left unserved.",
    "violation_cost_eur": "Penalty for the voltage-band and loading violations left after "
                          "the market.",
    "activated_mwh": "Energy of all activated flexibility, up and down counted as "
                     "magnitudes.",
    "cross_level_mwh": "Energy the TSO activated in distribution grids plus what DSOs "
                       "activated in the transmission grid.",
    "conflicts": "Number of TSO-DSO conflicts recorded.",
    "conflict_mwh": "Energy involved in the recorded TSO-DSO conflicts.",
    "unresolved_imbalance_mwh": "Energy of the system imbalance the market left unserved.",
    "voltage_violation_bus_steps": "Bus-steps outside the voltage band after the market "
                                   "(one bus in one step counts one).",
    "overload_branch_steps": "Branch-steps above the loading limit after the market (one "
                             "branch in one step counts one).",
    "curtailment_mwh": "Energy of renewable generation curtailed by downward activations.",
}
#: KPIs that are counts (stored as integers).
COUNT_KPIS = frozenset({"conflicts", "voltage_violation_bus_steps", "overload_branch_steps"})
#: Asset kinds whose downward activation is renewable curtailment.
CURTAILABLE_KINDS = tuple(k.encode() for k in RES_KINDS)


def compute_kpis(f: h5py.File) -> dict[str, float]:
    """All KPIs of the steps written in ``f`` (counts as ``int``, the rest as ``float``).

    Energies are |MW| * step_h summed over steps (activation and conflict volumes as
    magnitudes). Voltage and loading limits are the per-grid attributes; NaN values (not
    computed) never count as violations.
    """
    n = steps_written(f)
    step_h = int(f.attrs["step_s"]) / 3600.0
    k: dict[str, float] = {}

    costs = f["costs"]
    k["total_cost_eur"] = sum(float(np.sum(a)) for a in slabs(costs["total"], n))
    for key in COST_KEYS:
        k[f"{key}_cost_eur"] = sum(float(np.sum(a)) for a in slabs(costs[key], n))

    ds = f["needs/unresolved_imbalance_mw"]
    k["unresolved_imbalance_mwh"] = sum(float(np.sum(np.abs(a))) for a in slabs(ds, n)) * step_h

    volt = over = 0
    for grid in f["grids"].values():
        v, o = count_violations(grid, n)
        volt += v
        over += o
    k["voltage_violation_bus_steps"] = volt
    k["overload_branch_steps"] = over

    activated = cross = curtailed = 0.0
    act = f["activations"]
    for r0, r1, keep in table_slabs(act, n):
        mwh = np.abs(act["mw"][r0:r1][keep]) * step_h
        level = act["level"][r0:r1][keep]
        buyer = act["buyer"][r0:r1][keep]
        kind = act["kind"][r0:r1][keep]
        direction = act["direction"][r0:r1][keep]
        is_cross = ((buyer == TSO.encode()) & (level == b"D")) | (
            np.char.startswith(buyer, DSO_PREFIX.encode()) & (level == b"T")
        )
        is_curtail = np.isin(kind, CURTAILABLE_KINDS) & (direction == -1)
        activated += float(np.sum(mwh))
        cross += float(np.sum(mwh[is_cross]))
        curtailed += float(np.sum(mwh[is_curtail]))
    k["activated_mwh"] = activated
    k["cross_level_mwh"] = cross
    k["curtailment_mwh"] = curtailed

    count, volume = 0, 0.0
    con = f["conflicts"]
    for r0, r1, keep in table_slabs(con, n):
        count += int(np.count_nonzero(keep))
        volume += float(np.sum(np.abs(con["mw"][r0:r1][keep]))) * step_h
    k["conflicts"] = count
    k["conflict_mwh"] = volume

    return {name: k[name] for name in KPI_UNITS}


def read_kpis(f: h5py.File) -> dict[str, float]:
    """The stored /kpis, or (file of a killed run, or missing names) KPIs computed now."""
    stored = {k: attr_value(v) for k, v in f["kpis"].attrs.items()}
    if all(k in stored for k in KPI_UNITS):
        return {k: stored[k] for k in KPI_UNITS}
    return compute_kpis(f)


def write_kpis(f: h5py.File, kpis: dict[str, float]) -> None:
    """Store KPIs as attributes of /kpis (counts as int64, the rest as float64)."""
    group = f.require_group("kpis")
    for name, value in kpis.items():
        group.attrs[name] = np.int64(value) if name in COUNT_KPIS else np.float64(value)
