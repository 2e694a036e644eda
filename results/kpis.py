"""Key performance indicators of a run, computed from its results file.

Everything is read in slabs of rows, so a year of quarter-hours never has to fit in memory.
Works on complete and on interrupted files (only the steps written count).
"""

from __future__ import annotations

import h5py
import numpy as np
from tsodso.core.vocabulary import COST_COLUMNS, DSO_PREFIX, RES_KINDS, TSO, UNSERVED_KEYS
from tsodso.results.read import (
    attr_value,
    count_violations,
    slabs,
    steps_written,
    table_slabs,
)

#: KPI of each per-step cost column (the run's sum of that column).
COST_KPI: dict[str, str] = {
    "social": "social_cost_eur",
    "resource": "resource_cost_eur",
    "imbalance": "imbalance_value_eur",
    "overload_t": "overload_t_value_eur",
    "overload_d": "overload_d_value_eur",
    "voltage_t": "voltage_t_value_eur",
    "voltage_d": "voltage_d_value_eur",
    "tso": "tso_paid_eur",
    "dso": "dso_paid_eur",
    "brp": "brp_paid_eur",
    "brp_imbalance_charges": "brp_imbalance_charges_eur",
    "dso_imbalance_charges": "dso_imbalance_charges_eur",
    "congestion_rent": "congestion_rent_eur",
}
#: KPI of each per-step unserved quantity (the run's sum).
UNSERVED_KPI: dict[str, str] = {key: f"unserved_{key}" for key in UNSERVED_KEYS}

#: KPI name -> units, in the order they are written to /kpis.
KPI_UNITS: dict[str, str] = {
    "social_cost_eur": "EUR",
    "unserved_value_eur": "EUR",
    **{COST_KPI[key]: "EUR" for key in COST_COLUMNS if key != "social"},
    **{UNSERVED_KPI[key]: ("MWh" if key.endswith("mwh") else "pu h") for key in UNSERVED_KEYS},
    "activated_mwh": "MWh",
    "cross_level_mwh": "MWh",
    "conflicts": "1",
    "conflict_mwh": "MWh",
    "voltage_violation_bus_steps": "1",
    "overload_branch_steps": "1",
    "curtailment_mwh": "MWh",
}
#: KPI name -> what it measures, one plain sentence (export and documentation).
KPI_DESCRIPTIONS: dict[str, str] = {
    "social_cost_eur": "Social cost: the flexibility's resource cost at bid prices plus the "
                       "value of what stays unserved; the quantity schemes are ranked by.",
    "unserved_value_eur": "Value of what stays unserved after the market: imbalance, "
                          "overloads and voltage outside the band, T and D.",
    "resource_cost_eur": "Resource cost of the activated flexibility: bid price times energy.",
    "imbalance_value_eur": "Value of the system imbalance the market left unserved.",
    "overload_t_value_eur": "Value of the MVA x h above transmission branch ratings.",
    "overload_d_value_eur": "Value of the MVA x h above distribution branch ratings.",
    "voltage_t_value_eur": "Value of the pu x h outside the transmission voltage band.",
    "voltage_d_value_eur": "Value of the pu x h outside the distribution voltage band.",
    "tso_paid_eur": "What the TSO paid for flexibility under the pricing rule (a transfer).",
    "dso_paid_eur": "What the DSOs paid for flexibility under the pricing rule, all DSO grids "
                    "together (a transfer).",
    "brp_paid_eur": "What balance responsible parties paid for flexibility bought against "
                    "their own imbalance (a transfer).",
    "brp_imbalance_charges_eur": "BRPs' open positions settled with the TSO at its balancing "
                                 "price (a transfer; positive = BRPs paid).",
    "dso_imbalance_charges_eur": "DSOs' residual area imbalance settled with the TSO (a "
                                 "transfer; positive = DSOs paid).",
    "congestion_rent_eur": "Part of pay-as-clear payments set by network constraints rather "
                           "than by the balance (inside the payments, above them where the "
                           "uniform part is negative; 0 under pay-as-bid).",
    "unserved_imbalance_mwh": "Energy of the system imbalance the market left unserved.",
    "unserved_overload_t_mwh": "MVA x h above transmission branch ratings after the market.",
    "unserved_overload_d_mwh": "MVA x h above distribution branch ratings after the market.",
    "unserved_voltage_t_puh": "pu x h outside the transmission voltage band, summed over "
                              "buses.",
    "unserved_voltage_d_puh": "pu x h outside the distribution voltage band, summed over "
                              "buses.",
    "activated_mwh": "Energy of all activated flexibility, up and down counted as "
                     "magnitudes.",
    "cross_level_mwh": "Energy the TSO activated in distribution grids plus what DSOs "
                       "activated in the transmission grid.",
    "conflicts": "Number of TSO-DSO conflicts recorded.",
    "conflict_mwh": "Energy involved in the recorded TSO-DSO conflicts.",
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
    for key in COST_COLUMNS:
        k[COST_KPI[key]] = sum(float(np.sum(a)) for a in slabs(costs[key], n))
    k["unserved_value_eur"] = k["social_cost_eur"] - k["resource_cost_eur"]
    for key in UNSERVED_KEYS:
        k[UNSERVED_KPI[key]] = sum(float(np.sum(a)) for a in slabs(f["unserved"][key], n))

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
