"""Tests of the HDF5 results format: layout, contents, KPIs and crash safety."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from tsodso.core.vocabulary import COST_COLUMNS, COST_KEYS, UNSERVED_KEYS
from tsodso.results.read import load_table, open_results, read_meta
from tsodso.results.writer import (
    Activation,
    Conflict,
    GridLayout,
    ResultsWriter,
    RunMeta,
    StepRecord,
)

N = 250
STEP_S = 900  # 15 min: MW * 0.25 = MWh
T_BUS, T_BRANCH = ["t0", "t1", "t2", "t3"], ["tl0", "tl1", "tt0"]
D_BUS, D_BRANCH = ["d0", "d1", "d2"], ["dl0", "dt0"]
GRIDS = [
    GridLayout("HV1", "T", T_BUS, T_BRANCH),
    GridLayout("MV1.101", "D", D_BUS, D_BRANCH),
]
INTERFACES = [("HV1-MV1.101-a", "MV1.101"), ("HV1-MV1.101-b", "MV1.101")]
DSO_GRIDS = ["MV1.101"]
STORAGE = "Speicher Ü1"  # non-ASCII name: UTF-8 round trip


def make_meta(n_steps: int = N) -> RunMeta:
    return RunMeta(
        scheme="centralized",
        scenario="unit",
        seed=42,
        start=datetime(2016, 3, 1, 0, 0),
        step_s=STEP_S,
        n_steps=n_steps,
        software_version="0.1.0",
        scenario_toml='name = "unit"\n',
        limits={"T": (0.9, 1.1, 100.0), "D": (0.95, 1.05, 80.0)},
        scheme_label="Centralized market",
        scheme_short="Centralized",
        scheme_description="The TSO runs one market. In this run DSO prequalification is off.",
        scheme_order=1,
    )


def make_record(t: int) -> StepRecord:
    """Step t of a run built so that every KPI can be counted by hand (see test_kpis)."""
    vm_t = np.array([1.0, 1.0, 1.0, 1.0 + (t % 50) / 1000.0])  # t3 stays within 1.0-1.049
    if t % 10 == 0:
        vm_t[0] = 1.12  # above 1.10: 25 steps
    if t == 7:
        vm_t[3] = np.nan  # not computed: never a violation
    vm_d = np.array([1.0, 1.05, 1.0])  # d1 sits exactly on the upper limit: no violation
    if t % 25 == 0:
        vm_d[2] = 0.94  # below 0.95: 10 steps
    ld_t = np.array([50.0 + (t % 7), 100.0, 30.0])  # tl1 exactly at the limit: no overload
    if t % 50 == 0:
        ld_t[0] = 101.0  # 5 steps
    ld_d = np.array([90.0 if 100 <= t < 110 else 40.0, 20.0])  # D limit 80 %: 10 steps

    acts: list[Activation] = []
    if t % 5 == 0:  # TSO buys D curtailment: cross-level and curtailment
        acts.append(Activation("pv_d2", "pv", "MV1.101", "D", "TSO", -1, 4.0, 20.0, 20.0))
    if t % 5 == 1:  # DSO buys a T resource: cross-level
        acts.append(Activation(STORAGE, "storage", "HV1", "T", "DSO:MV1.101", 1, 2.0, 50.0, 25.0))
    if t % 5 == 2:  # TSO curtails T wind; DSO buys its own load
        acts.append(Activation("wind_t1", "wind", "HV1", "T", "TSO", -1, 3.0, 10.0, 7.5))
        acts.append(Activation("load_d0", "load", "MV1.101", "D", "DSO:MV1.101", 1, 1.0, 80.0,
                               20.0))
    if t % 5 == 3:  # BRP buys upward renewable output: neither cross-level nor curtailment
        acts.append(Activation("res_d1", "other_res", "MV1.101", "D", "BRP:7", 1, 5.0, 40.0,
                               50.0))
    conflicts: list[Conflict] = []
    if t % 20 == 0:
        conflicts.append(Conflict("opposite_direction", "MV1.101", 1.5))
    if t == 33:
        conflicts.append(Conflict("interface_schedule_deviation", "MV1.101", -2.0))
    return StepRecord(
        step=t,
        vm_pu={"HV1": vm_t, "MV1.101": vm_d},
        loading_percent={"HV1": ld_t, "MV1.101": ld_d},
        interface_p_mw=np.array([10.0 + t, -5.0 - t]),
        interface_q_mvar=np.array([1.0, -0.5 * t]),
        tso_imbalance_mw=float(t % 13 - 6),
        unresolved_imbalance_mw=2.0 if t % 2 == 0 else -1.0,
        activations=acts,
        conflicts=conflicts,
        costs={
            "resource": 1.5,
            "imbalance": t / 100.0,
            "overload_t": 10.0 if t % 50 == 0 else 0.0,
            "overload_d": 0.0,
            "voltage_t": 0.0,
            "voltage_d": 0.25 if t % 25 == 0 else 0.0,
            "tso": 1.0,
            "dso": 2.0,
            "brp": -0.5,
            "brp_imbalance_charges": 0.0,
            "dso_imbalance_charges": 0.1,
            "congestion_rent": 0.0,
        },
        dso_cost_by_grid=np.array([2.0]),
        unserved={
            "imbalance_mwh": (2.0 if t % 2 == 0 else 1.0) * 0.25,
            "overload_t_mwh": 0.25 if t % 50 == 0 else 0.0,
            "overload_d_mwh": 0.0,
            "voltage_t_puh": 0.0,
            "voltage_d_puh": 0.0025 if t % 25 == 0 else 0.0,
        },
    )


def write_run(path: Path, n: int = N, block_steps: int = 96) -> dict[str, float]:
    w = ResultsWriter(path, make_meta(n), GRIDS, INTERFACES, DSO_GRIDS, block_steps=block_steps)
    for t in range(n):
        w.append(make_record(t))
    return w.close(complete=True, timing={"powerflow_s": 1.5, "clearing_s": 2.5, "total_s": 5.0})


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    path = tmp_path_factory.mktemp("res") / "run.h5"
    return path, write_run(path)


TIME_UNITS = "seconds since 2016-03-01 00:00:00"
EXPECTED_UNITS = {
    "time": TIME_UNITS,
    "grids/HV1/time": TIME_UNITS,
    "grids/MV1.101/time": TIME_UNITS,
    "interfaces/time": TIME_UNITS,
    "needs/time": TIME_UNITS,
    "costs/time": TIME_UNITS,
    "unserved/time": TIME_UNITS,
    "grids/HV1/bus": "1",
    "grids/HV1/branch": "1",
    "grids/HV1/vm_pu": "pu",
    "grids/HV1/branch_loading_percent": "percent",
    "grids/MV1.101/bus": "1",
    "grids/MV1.101/branch": "1",
    "grids/MV1.101/vm_pu": "pu",
    "grids/MV1.101/branch_loading_percent": "percent",
    "interfaces/name": "1",
    "interfaces/grid": "1",
    "interfaces/p_mw": "MW",
    "interfaces/q_mvar": "Mvar",
    "interfaces/tap_pos": "1",
    "needs/tso_imbalance_mw": "MW",
    "needs/unresolved_imbalance_mw": "MW",
    **{f"costs/{key}": "EUR" for key in COST_COLUMNS},
    "unserved/imbalance_mwh": "MWh",
    "unserved/overload_t_mwh": "MWh",
    "unserved/overload_d_mwh": "MWh",
    "unserved/voltage_t_puh": "pu h",
    "unserved/voltage_d_puh": "pu h",
    "costs/dso_by_grid": "EUR",
    "costs/dso_grid": "1",
    "activations/row": "1",
    "activations/step": "1",
    "activations/resource": "1",
    "activations/kind": "1",
    "activations/grid": "1",
    "activations/level": "1",
    "activations/buyer": "1",
    "activations/direction": "1",
    "activations/mw": "MW",
    "activations/price": "EUR/MWh",
    "activations/cost": "EUR",
    "activations/bid_price": "EUR/MWh",
    "conflicts/row": "1",
    "conflicts/step": "1",
    "conflicts/kind": "1",
    "conflicts/grid": "1",
    "conflicts/mw": "MW",
    "events/row": "1",
    "events/step": "1",
    "events/kind": "1",
    "events/grid": "1",
    "events/detail": "1",
}

# hand counts from make_record: 50 steps each of t % 5 == 0, 1, 2, 3
N_ACT = 50 * 5
N_CONF = 13 + 1  # t % 20 == 0 for t = 0..240, plus t == 33


def test_root_attributes(run_file):
    path, _ = run_file
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "tsodso-results"
        assert a["format_version"] == 3
        assert a["scheme"] == "centralized" and a["scenario"] == "unit"
        assert a["seed"] == 42 and a["step_s"] == STEP_S and a["n_steps"] == N
        assert a["start"] == "2016-03-01T00:00:00"
        assert a["software_version"] == "0.1.0"
        assert a["scenario_toml"] == 'name = "unit"\n'
        assert bool(a["complete"]) is True
        assert f["grids/HV1"].attrs["level"] == "T"
        assert f["grids/MV1.101"].attrs["level"] == "D"
        assert f["grids/MV1.101"].attrs["vm_min_pu"] == 0.95
        assert f["grids/MV1.101"].attrs["loading_max_percent"] == 80.0
        assert dict(f["timing"].attrs) == {"powerflow_s": 1.5, "clearing_s": 2.5, "total_s": 5.0}
        assert a["scheme_label"] == "Centralized market" and a["scheme_short"] == "Centralized"
        assert a["scheme_description"].endswith("prequalification is off.")
        assert not a["scheme_counterfactual"] and not a["scheme_balances_areas"]
        assert a["scheme_order"] == 1 and a["builtin"] == ""
    meta = read_meta(path)
    assert meta["complete"] is True and meta["steps_written"] == N
    assert meta["scheme_counterfactual"] is False and meta["scheme_order"] == 1
    assert meta["start"] == datetime(2016, 3, 1)
    assert meta["grids"]["HV1"]["vm_max_pu"] == 1.1


def test_scheme_attributes_of_older_files_default(tmp_path):
    """Files written before the scheme attributes existed read with the documented defaults."""
    path = tmp_path / "old.h5"
    write_run(path, n=3, block_steps=2)
    with h5py.File(path, "r+") as f:
        for key in ("scheme_label", "scheme_short", "scheme_description",
                    "scheme_counterfactual", "scheme_balances_areas", "scheme_order", "builtin"):
            del f.attrs[key]
    meta = read_meta(path)
    assert meta["scheme_label"] == meta["scheme_short"] == "centralized"
    assert meta["scheme_description"] == "" and meta["builtin"] == ""
    assert meta["scheme_counterfactual"] is False and meta["scheme_balances_areas"] is False
    assert meta["scheme_order"] == 100


def test_shapes_units_and_scales(run_file):
    path, _ = run_file
    n_if = len(INTERFACES)
    shapes = {
        "time": (N,),
        "grids/HV1/bus": (4,),
        "grids/HV1/branch": (3,),
        "grids/HV1/vm_pu": (N, 4),
        "grids/HV1/branch_loading_percent": (N, 3),
        "grids/MV1.101/vm_pu": (N, 3),
        "grids/MV1.101/branch_loading_percent": (N, 2),
        "interfaces/name": (n_if,),
        "interfaces/grid": (n_if,),
        "interfaces/p_mw": (N, n_if),
        "interfaces/q_mvar": (N, n_if),
        "interfaces/tap_pos": (N, n_if),
        "needs/tso_imbalance_mw": (N,),
        "needs/unresolved_imbalance_mw": (N,),
        "costs/social": (N,),
        "costs/dso_by_grid": (N, 1),
        "costs/dso_grid": (1,),
    }
    with h5py.File(path, "r") as f:
        for name, shape in shapes.items():
            assert f[name].shape == shape, name
        for table, n_rows in (("activations", N_ACT), ("conflicts", N_CONF)):
            for col in f[table]:
                assert f[table][col].shape == (n_rows,), (table, col)
        datasets: list[str] = []
        f.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(datasets) == sorted(EXPECTED_UNITS)
        for name, units in EXPECTED_UNITS.items():
            assert f[name].attrs["units"] == units, name
        # growing datasets: chunked along time, compressed
        vm = f["grids/HV1/vm_pu"]
        assert vm.chunks == (96, 4) and vm.compression == "gzip" and vm.shuffle
        assert vm.maxshape == (None, 4)
        # dimension scales
        assert f["time"].is_scale and f["grids/HV1/bus"].is_scale
        assert vm.dims[0][0] == f["grids/HV1/time"] and vm.dims[1][0] == f["grids/HV1/bus"]
        lp = f["grids/MV1.101/branch_loading_percent"]
        assert lp.dims[1][0] == f["grids/MV1.101/branch"]
        assert f["interfaces/p_mw"].dims[1][0] == f["interfaces/name"]
        assert f["costs/dso_by_grid"].dims[1][0] == f["costs/dso_grid"]
        assert f["activations/mw"].dims[0][0] == f["activations/row"]


def test_contents_equal_appended(run_file):
    path, _ = run_file
    recs = [make_record(t) for t in range(N)]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["time"][:], np.arange(N) * STEP_S)
        assert list(f["grids/HV1/bus"].asstr()[:]) == T_BUS
        assert list(f["grids/MV1.101/branch"].asstr()[:]) == D_BRANCH
        assert list(f["interfaces/name"].asstr()[:]) == [i[0] for i in INTERFACES]
        assert list(f["interfaces/grid"].asstr()[:]) == [i[1] for i in INTERFACES]
        assert list(f["costs/dso_grid"].asstr()[:]) == DSO_GRIDS
        for g in ("HV1", "MV1.101"):
            np.testing.assert_array_equal(f[f"grids/{g}/vm_pu"][:],
                                          np.stack([r.vm_pu[g] for r in recs]))
            np.testing.assert_array_equal(f[f"grids/{g}/branch_loading_percent"][:],
                                          np.stack([r.loading_percent[g] for r in recs]))
        assert np.isnan(f["grids/HV1/vm_pu"][7, 3])
        np.testing.assert_array_equal(f["interfaces/p_mw"][:],
                                      np.stack([r.interface_p_mw for r in recs]))
        np.testing.assert_array_equal(f["interfaces/q_mvar"][:],
                                      np.stack([r.interface_q_mvar for r in recs]))
        np.testing.assert_array_equal(f["needs/tso_imbalance_mw"][:],
                                      [r.tso_imbalance_mw for r in recs])
        np.testing.assert_array_equal(f["needs/unresolved_imbalance_mw"][:],
                                      [r.unresolved_imbalance_mw for r in recs])
        for key in COST_KEYS:
            np.testing.assert_array_equal(f[f"costs/{key}"][:], [r.costs[key] for r in recs])
        for key in UNSERVED_KEYS:
            np.testing.assert_array_equal(f[f"unserved/{key}"][:], [r.unserved[key] for r in recs])
        total = [1.5 + t / 100.0 + (10.0 if t % 50 == 0 else 0.0) + (0.25 if t % 25 == 0 else 0.0)
                 for t in range(N)]
        np.testing.assert_allclose(f["costs/social"][:], total, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(f["costs/dso_by_grid"][:], np.full((N, 1), 2.0))
        assert f["activations/direction"].dtype == np.int8
        assert f["activations/step"].dtype == np.int64

    act = load_table(path, "activations")
    expected = [(t, a) for t in range(N) for a in recs[t].activations]
    assert list(act) == ["step", "resource", "kind", "grid", "level", "buyer", "direction",
                         "mw", "price", "cost", "bid_price"]
    assert act["step"].tolist() == [t for t, _ in expected]
    for col in ("resource", "kind", "grid", "level", "buyer", "direction", "mw", "price", "cost"):
        assert act[col].tolist() == [getattr(a, col) for _, a in expected], col
    assert STORAGE in set(act["resource"])
    con = load_table(path, "conflicts")
    expected_c = [(t, c) for t in range(N) for c in recs[t].conflicts]
    assert con["step"].tolist() == [t for t, _ in expected_c]
    for col in ("kind", "grid", "mw"):
        assert con[col].tolist() == [getattr(c, col) for _, c in expected_c], col


def test_kpis_hand_computed(run_file):
    path, kpis = run_file
    h = 0.25  # step in hours
    expected = {
        "resource_cost_eur": 250 * 1.5,
        "imbalance_value_eur": (249 * 250 / 2) / 100.0,  # sum of t/100 for t = 0..249
        "overload_t_value_eur": 5 * 10.0,
        "overload_d_value_eur": 0.0,
        "voltage_t_value_eur": 0.0,
        "voltage_d_value_eur": 10 * 0.25,
        "tso_paid_eur": 250 * 1.0,
        "dso_paid_eur": 250 * 2.0,
        "brp_paid_eur": 250 * -0.5,
        "brp_imbalance_charges_eur": 0.0,
        "dso_imbalance_charges_eur": 250 * 0.1,
        "congestion_rent_eur": 0.0,
        "unserved_imbalance_mwh": (125 * 2.0 + 125 * 1.0) * h,
        "unserved_overload_t_mwh": 5 * 0.25,
        "unserved_overload_d_mwh": 0.0,
        "unserved_voltage_t_puh": 0.0,
        "unserved_voltage_d_puh": 10 * 0.0025,
        "activated_mwh": 50 * (4 + 2 + 3 + 1 + 5) * h,
        "cross_level_mwh": 50 * (4 + 2) * h,  # TSO<-D pv and DSO<-T storage
        "curtailment_mwh": 50 * (4 + 3) * h,  # pv down and wind down
        "conflicts": 14,
        "conflict_mwh": (13 * 1.5 + 2.0) * h,
        "voltage_violation_bus_steps": 25 + 10,
        "overload_branch_steps": 5 + 10,
    }
    # social cost: resource cost and unserved values only; payments are transfers
    expected["social_cost_eur"] = 375 + 311.25 + 50 + 2.5
    expected["unserved_value_eur"] = 311.25 + 50 + 2.5
    assert set(kpis) == set(expected)
    for name, value in expected.items():
        assert kpis[name] == pytest.approx(value, abs=1e-9), name
    with h5py.File(path, "r") as f:
        stored = dict(f["kpis"].attrs)
    assert set(stored) == set(expected)
    for name, value in expected.items():
        assert stored[name] == pytest.approx(value, abs=1e-9), name
    assert isinstance(stored["conflicts"], np.integer)
    assert read_meta(path)["kpis"]["overload_branch_steps"] == 15


def test_block_size_does_not_change_contents(run_file, tmp_path):
    path, kpis = run_file
    other = tmp_path / "b7.h5"
    assert write_run(other, block_steps=7) == kpis
    with h5py.File(path, "r") as a, h5py.File(other, "r") as b:
        for name in ("grids/HV1/vm_pu", "costs/social", "activations/mw", "conflicts/kind"):
            np.testing.assert_array_equal(a[name][:], b[name][:])


def test_invalid_records_rejected(tmp_path):
    w = ResultsWriter(tmp_path / "bad.h5", make_meta(), GRIDS, INTERFACES, DSO_GRIDS)
    with pytest.raises(ValueError, match="expected step 0"):
        w.append(make_record(1))
    rec = make_record(0)
    rec.vm_pu["HV1"] = np.ones(3)
    with pytest.raises(ValueError, match="shape"):
        w.append(rec)
    rec = make_record(0)
    rec.activations.append(Activation("x" * 200, "pv", "MV1.101", "D", "TSO", -1, 1, 1, 1))
    with pytest.raises(ValueError, match="resource"):
        w.append(rec)
    rec = make_record(0)
    rec.activations.append(Activation("x", "pv", "MV1.101", "D", "TSO", 0, 1, 1, 1))
    with pytest.raises(ValueError, match="direction"):
        w.append(rec)
    rec = make_record(0)
    rec.activations.append(Activation("x", "pv", "MV1.101", "D", "TSO", 1, "n/a", 1, 1))
    with pytest.raises(ValueError):
        w.append(rec)
    rec = make_record(0)
    del rec.costs["brp"]
    with pytest.raises(ValueError, match="costs"):
        w.append(rec)
    w.append(make_record(0))  # nothing of the rejected records was buffered
    w.close(complete=True)
    assert load_table(tmp_path / "bad.h5", "activations")["step"].tolist() == [0]


def test_context_manager_exception_leaves_incomplete_file(tmp_path):
    path = tmp_path / "exc.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with ResultsWriter(path, make_meta(), GRIDS, INTERFACES, DSO_GRIDS, block_steps=10) as w:
            for t in range(15):
                w.append(make_record(t))
            raise RuntimeError("boom")
    with h5py.File(path, "r") as f:  # closed properly: opens without SWMR
        assert bool(f.attrs["complete"]) is False
        np.testing.assert_array_equal(f["time"][:], np.arange(15) * STEP_S)  # buffer flushed
        assert f["grids/HV1/vm_pu"].shape == (15, 4)
        # KPIs cover the 15 steps written: voltage violations at t = 0 and 10 (T), 0 (D)
        assert f["kpis"].attrs["voltage_violation_bus_steps"] == 3
    with ResultsWriter(path, make_meta(), GRIDS, INTERFACES, DSO_GRIDS) as w:
        w.append(make_record(0))
    assert read_meta(path)["complete"] is True  # normal exit closes with complete=True


class _FailOnce:
    """Dataset stand-in whose second resize raises KeyboardInterrupt (Ctrl-C mid-block)."""

    def __init__(self, ds: h5py.Dataset) -> None:
        self.ds, self.calls = ds, 0

    def resize(self, *args, **kwargs) -> None:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        self.ds.resize(*args, **kwargs)

    def __setitem__(self, key, value) -> None:
        self.ds[key] = value


def test_interrupt_in_the_middle_of_a_block(tmp_path):
    path = tmp_path / "ctrlc.h5"
    with pytest.raises(KeyboardInterrupt):
        with ResultsWriter(path, make_meta(), GRIDS, INTERFACES, DSO_GRIDS, block_steps=10) as w:
            series = w._series["/needs/unresolved_imbalance_mw"]
            series.ds = _FailOnce(series.ds)  # fails half-way through the second block
            for t in range(25):
                w.append(make_record(t))
    assert w.steps_appended == 20  # the interrupt came at the append of step 19
    meta = read_meta(path)
    assert meta["complete"] is False and meta["steps_written"] == 20  # block retried by close
    with h5py.File(path, "r") as f:
        for name in ("time", "grids/HV1/vm_pu", "needs/unresolved_imbalance_mw", "costs/social"):
            assert f[name].shape[0] == 20, name
        n_act = sum(len(make_record(t).activations) for t in range(20))
        assert f["activations/step"].shape == f["activations/row"].shape == (n_act,)
        np.testing.assert_array_equal(f["needs/unresolved_imbalance_mw"][:],
                                      [2.0 if t % 2 == 0 else -1.0 for t in range(20)])
        np.testing.assert_array_equal(f["time"][:], np.arange(20) * STEP_S)
    assert load_table(path, "activations")["step"].tolist() == [
        t for t in range(20) for _ in make_record(t).activations
    ]


CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
import test_results_writer as t
from tsodso.results.writer import ResultsWriter
w = ResultsWriter({path!r}, t.make_meta(), t.GRIDS, t.INTERFACES, t.DSO_GRIDS, block_steps=10)
done = 0
for step in range(35):
    w.append(t.make_record(step))
    if w.steps_written != done:
        done = w.steps_written
        print(done, flush=True)
time.sleep(600)
"""


def test_killed_writer_leaves_readable_file(tmp_path):
    path = tmp_path / "killed.h5"
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        reported = []
        for line in proc.stdout:
            reported.append(int(line))
            if reported[-1] >= 30:
                break
        if reported != [10, 20, 30]:
            proc.kill()
            pytest.fail(f"writer reported {reported}; stderr: {proc.stderr.read()}")
        live = read_meta(path)  # readable while the writer is still running
        assert live["complete"] is False and live["steps_written"] == 30
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with open_results(path) as f:  # falls back to SWMR reading: the writer never closed it
        assert f.mode == "r"
        assert bool(f.attrs["complete"]) is False
        n = f["time"].shape[0]
        assert n >= 30
        np.testing.assert_array_equal(f["time"][:], np.arange(n) * STEP_S)
        recs = [make_record(t) for t in range(n)]
        np.testing.assert_array_equal(f["grids/MV1.101/vm_pu"][:n],
                                      np.stack([r.vm_pu["MV1.101"] for r in recs]))
        np.testing.assert_array_equal(f["interfaces/p_mw"][:n],
                                      np.stack([r.interface_p_mw for r in recs]))
        assert len(f["kpis"].attrs) == 0  # KPIs are only written by close()
    with h5py.File(path, "r", swmr=True) as f:
        assert f["costs/social"].shape[0] >= 30
    meta = read_meta(path)
    assert meta["complete"] is False and meta["steps_written"] == 30
    con = load_table(path, "conflicts")
    assert con["step"].tolist() == [0, 20]  # t % 20 == 0 below step 30
    act = load_table(path, "activations")
    assert act["step"].tolist() == [t for t in range(30) for _ in make_record(t).activations]
