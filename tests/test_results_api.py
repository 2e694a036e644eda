"""Tests of the analyst API (results.open / compare / export) and of reading the files with
xarray's h5netcdf engine."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tsodso.core.vocabulary import COST_COLUMNS, SOCIAL_KEYS
from tsodso.results.kpis import COUNT_KPIS, KPI_UNITS
from tsodso.results.read import open_results

from tests.conftest import make_scenario
from tests.test_results_writer import INTERFACES, STEP_S, STORAGE, make_record, write_run
from tsodso import results
from tsodso.comparison import write_summary
from tsodso.runner import run

SCHEMES = ["shared_balancing", "centralized"]  # not alphabetical: summary.csv order must win
STEPS = 6
HAND_N = 40  # steps of the hand-built file (tests.test_results_writer.make_record)
KILLED_AT, KILLED_N = 25, 20  # steps appended before os._exit, steps flushed (blocks of 10)

KILL = """
import os, sys
sys.path.insert(0, {root!r})
from tests import test_results_writer as t
from tsodso.core.vocabulary import COST_COLUMNS, SOCIAL_KEYS
from tsodso.results.writer import ResultsWriter
w = ResultsWriter({path!r}, t.make_meta(), t.GRIDS, t.INTERFACES, t.DSO_GRIDS, block_steps=10)
for step in range({steps}):
    w.append(t.make_record(step))
os._exit(0)  # dies without close(): file still flagged open for SWMR writing, no /kpis
"""


@pytest.fixture(scope="module")
def cmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small compare directory: two schemes on tiny, 6 steps, with summary.csv."""
    out = tmp_path_factory.mktemp("cmp")
    sc = make_scenario(steps=STEPS)
    rows = [{"scheme": s, **run(sc, s, out / f"{s}.h5")} for s in SCHEMES]
    write_summary(rows, out / "summary.csv")
    return out


@pytest.fixture(scope="module")
def hand_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file of HAND_N steps written from make_record, whose contents are known by hand."""
    path = tmp_path_factory.mktemp("hand") / "hand.h5"
    write_run(path, n=HAND_N, block_steps=16)
    return path


@pytest.fixture(scope="module")
def killed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("killed") / "killed.h5"
    root = str(Path(__file__).resolve().parents[1])
    code = KILL.format(root=root, path=str(path), steps=KILLED_AT)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    return path


def h5(path: Path, name: str) -> np.ndarray:
    """A dataset as h5py reads it (strings as str), through SWMR if needed."""
    with open_results(path) as f:
        ds = f[name]
        return ds.asstr()[:] if ds.dtype.kind in "SO" else ds[:]


# -- Run: metadata, time, tables ------------------------------------------------------------


def test_meta_and_time(hand_file):
    with results.open(hand_file) as r:
        meta = r.meta
        assert meta["start"] == datetime(2016, 3, 1) and meta["complete"] is True
        assert meta["scheme"] == "centralized" and meta["step_s"] == STEP_S
        assert meta["scheme_label"] == "Centralized market" and meta["builtin"] == ""
        assert r.steps == HAND_N and r.grids == ["HV1", "MV1.101"]
        assert r.timing == {"powerflow_s": 1.5, "clearing_s": 2.5, "total_s": 5.0}
        t = r.time
        assert len(t) == HAND_N and t.name == "time"
        assert t[0] == pd.Timestamp("2016-03-01 00:00")
        assert t[33] == pd.Timestamp("2016-03-01 08:15")
        assert (np.diff(t.values) == np.timedelta64(15, "m")).all()
    with pytest.raises(ValueError, match="closed"):
        r.costs  # noqa: B018


def test_tables_hand(hand_file):
    r = results.open(hand_file)
    act = r.activations
    assert list(act.columns) == ["step", "time", "resource", "kind", "grid", "level", "buyer",
                                 "direction", "mw", "price", "cost", "bid_price"]
    recs = [make_record(t) for t in range(HAND_N)]
    expected = [(t, a) for t in range(HAND_N) for a in recs[t].activations]
    assert act["step"].tolist() == [t for t, _ in expected]
    assert act["resource"].tolist() == [a.resource for _, a in expected]
    assert STORAGE in set(act["resource"])  # UTF-8 name comes back as str
    assert act["direction"].tolist() == [a.direction for _, a in expected]
    np.testing.assert_array_equal(act["cost"], [a.cost for _, a in expected])
    step1 = act[act["step"] == 1]
    assert (step1["time"] == pd.Timestamp("2016-03-01 00:15")).all()

    con = r.conflicts
    assert list(con.columns) == ["step", "time", "kind", "grid", "mw"]
    assert con["step"].tolist() == [0, 20, 33]  # t % 20 == 0 and t == 33
    assert con["time"].tolist() == [pd.Timestamp("2016-03-01 00:00"),
                                    pd.Timestamp("2016-03-01 05:00"),
                                    pd.Timestamp("2016-03-01 08:15")]
    assert con["kind"].tolist() == ["opposite_direction", "opposite_direction",
                                    "interface_schedule_deviation"]
    assert con["mw"].tolist() == [1.5, 1.5, -2.0]


def test_tables_equal_h5py(cmp_dir):
    for s in SCHEMES:
        path = cmp_dir / f"{s}.h5"
        act = results.open(path).activations
        assert len(act) > 0
        for col in ("step", "resource", "kind", "grid", "level", "buyer", "direction", "mw",
                    "price", "cost"):
            np.testing.assert_array_equal(act[col].to_numpy(), h5(path, f"activations/{col}"))
        start = pd.Timestamp("2016-06-15 10:00")
        assert (act["time"] == start + pd.to_timedelta(act["step"] * 900, unit="s")).all()
        # pay-as-bid on a 15 min step: cost = MW * EUR/MWh * 0.25 h
        np.testing.assert_allclose(act["cost"], act["mw"] * act["price"] * 0.25, rtol=1e-12)
        con = results.open(path).conflicts
        assert list(con.columns) == ["step", "time", "kind", "grid", "mw"]
        assert len(con) == len(h5(path, "conflicts/step"))


# -- Run: costs, needs, KPIs ---------------------------------------------------------------


def test_costs_hand(hand_file):
    costs = results.open(hand_file).costs
    assert list(costs.columns) == [*COST_COLUMNS, "dso:MV1.101"]
    assert costs.index.name == "time" and len(costs) == HAND_N
    assert costs.index[33] == pd.Timestamp("2016-03-01 08:15")
    # make_record: resource 1.5, imbalance t/100, overload_t 10 at t % 50 == 0, voltage_d
    # 0.25 at t % 25 == 0; payments (transfers) are not part of the social cost
    t = np.arange(HAND_N)
    np.testing.assert_allclose(costs["social"], 1.5 + t / 100 + np.where(t % 50 == 0, 10.0, 0.0)
                               + np.where(t % 25 == 0, 0.25, 0.0), rtol=0, atol=1e-12)
    assert (costs["dso:MV1.101"] == 2.0).all()


def test_costs_and_needs_equal_h5py(cmp_dir):
    for s in SCHEMES:
        path = cmp_dir / f"{s}.h5"
        r = results.open(path)
        costs = r.costs
        grids = list(h5(path, "costs/dso_grid"))
        assert list(costs.columns) == [*COST_COLUMNS, *(f"dso:{g}" for g in grids)]
        assert costs.shape == (STEPS, len(COST_COLUMNS) + len(grids))
        for key in COST_COLUMNS:
            np.testing.assert_array_equal(costs[key].to_numpy(), h5(path, f"costs/{key}"))
        np.testing.assert_array_equal(costs[[f"dso:{g}" for g in grids]].to_numpy(),
                                      h5(path, "costs/dso_by_grid"))
        parts = costs[list(SOCIAL_KEYS)].sum(axis=1)
        np.testing.assert_allclose(costs["social"], parts, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(costs["dso"], costs[[f"dso:{g}" for g in grids]].sum(axis=1),
                                   rtol=1e-12, atol=1e-9)
        # each buyer's per-step cost is what it paid for its activations
        act = r.activations
        for g in grids:
            paid = act[act["buyer"] == f"DSO:{g}"].groupby("time")["cost"].sum()
            np.testing.assert_allclose(paid.reindex(costs.index, fill_value=0.0),
                                       costs[f"dso:{g}"], rtol=1e-9, atol=1e-9)
        tso_paid = act[act["buyer"] == "TSO"].groupby("time")["cost"].sum()
        np.testing.assert_allclose(tso_paid.reindex(costs.index, fill_value=0.0), costs["tso"],
                                   rtol=1e-9, atol=1e-9)
        assert (costs.index == pd.date_range("2016-06-15 10:00", periods=STEPS,
                                             freq="15min")).all()
        needs = r.needs
        assert list(needs.columns) == ["tso_imbalance_mw", "unresolved_imbalance_mw"]
        for key in needs.columns:
            np.testing.assert_array_equal(needs[key].to_numpy(), h5(path, f"needs/{key}"))
        assert (needs.index == costs.index).all()


def test_kpis(hand_file, cmp_dir):
    kpis = results.open(hand_file).kpis
    assert list(kpis.index) == list(KPI_UNITS) and kpis.name == "centralized"
    assert kpis.attrs["units"]["activated_mwh"] == "MWh"
    # 8 cycles of 5 steps, 4 + 2 + 3 + 1 + 5 MW per cycle, 0.25 h per step
    assert kpis["activated_mwh"] == pytest.approx(8 * 15 * 0.25)
    assert kpis["conflicts"] == 3
    # 40 steps: resource 1.5 each, imbalance t/100, overload_t 10 at t = 0, voltage_d 0.25 at
    # t = 0 and 25
    assert kpis["social_cost_eur"] == pytest.approx(40 * 1.5 + sum(range(40)) / 100 + 10.0
                                                    + 2 * 0.25)
    with h5py.File(cmp_dir / "centralized.h5", "r") as f:
        stored = {k: float(v) for k, v in f["kpis"].attrs.items()}
    assert results.open(cmp_dir / "centralized.h5").kpis.to_dict() == stored


# -- Run: xarray views ---------------------------------------------------------------------


def test_grid_dataset_equals_h5py(cmp_dir):
    path = cmp_dir / "shared_balancing.h5"
    r = results.open(path)
    assert r.grids == list(h5py.File(path, "r")["grids"])
    for name in r.grids:
        ds = r.grid(name)
        buses, branches = h5(path, f"grids/{name}/bus"), h5(path, f"grids/{name}/branch")
        assert ds["vm_pu"].dims == ("time", "bus")
        assert ds["branch_loading_percent"].dims == ("time", "branch")
        assert ds["vm_pu"].shape == (STEPS, len(buses))
        assert ds["bus"].values.tolist() == list(buses)
        assert ds["branch"].values.tolist() == list(branches)
        np.testing.assert_array_equal(ds["vm_pu"].values, h5(path, f"grids/{name}/vm_pu"))
        np.testing.assert_array_equal(ds["branch_loading_percent"].values,
                                      h5(path, f"grids/{name}/branch_loading_percent"))
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert ds["time"].values[1] - ds["time"].values[0] == np.timedelta64(900, "s")
        assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2016-06-15 10:00")
        assert ds["vm_pu"].attrs["units"] == "pu"
        assert ds["branch_loading_percent"].attrs["units"] == "percent"
        with h5py.File(path, "r") as f:
            for key, value in f[f"grids/{name}"].attrs.items():
                assert ds.attrs[key] == value
        assert ds.attrs["level"] in ("T", "D")
        # a realistic grid: every bus energised, voltages near 1 pu
        assert np.all((ds["vm_pu"] > 0.9) & (ds["vm_pu"] < 1.1))
    with pytest.raises(KeyError, match="no grid"):
        r.grid("nope")


def test_interfaces_dataset(cmp_dir):
    path = cmp_dir / "centralized.h5"
    ds = results.open(path).interfaces
    names = h5(path, "interfaces/name")
    assert ds["p_mw"].dims == ("time", "interface") and ds["p_mw"].shape == (STEPS, len(names))
    assert ds["interface"].values.tolist() == list(names)
    assert ds["grid"].values.tolist() == list(h5(path, "interfaces/grid"))
    np.testing.assert_array_equal(ds["p_mw"].values, h5(path, "interfaces/p_mw"))
    np.testing.assert_array_equal(ds["q_mvar"].values, h5(path, "interfaces/q_mvar"))
    assert ds["p_mw"].attrs["units"] == "MW" and ds["q_mvar"].attrs["units"] == "Mvar"


# -- interrupted runs ----------------------------------------------------------------------


def test_killed_run(killed_file):
    with pytest.raises(OSError):  # flagged as open for writing: plain opening fails
        h5py.File(killed_file, "r").close()
    r = results.open(killed_file)
    assert r.meta["complete"] is False and r.steps == KILLED_N
    assert len(r.costs) == KILLED_N and len(r.needs) == KILLED_N
    assert r.grid("HV1")["vm_pu"].shape == (KILLED_N, 4)
    assert r.interfaces["p_mw"].shape == (KILLED_N, len(INTERFACES))
    np.testing.assert_array_equal(r.interfaces["p_mw"].values[:, 0], 10.0 + np.arange(KILLED_N))
    assert r.activations["step"].max() == 18  # t % 5 == 4 has no activation
    assert r.conflicts["step"].tolist() == [0]
    kpis = r.kpis  # no /kpis in the file: computed from the 20 steps written
    assert kpis["activated_mwh"] == pytest.approx(4 * 15 * 0.25)
    assert kpis["voltage_violation_bus_steps"] == 3  # T at t = 0, 10; D at t = 0
    assert kpis["conflicts"] == 1
    table = results.compare(killed_file)
    assert table.attrs["complete"] == {"centralized": False}
    assert table.loc["centralized", "activated_mwh"] == pytest.approx(15.0)


# -- compare and export --------------------------------------------------------------------


def read_summary(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_compare_equals_summary(cmp_dir):
    table = results.compare(cmp_dir)
    summary = read_summary(cmp_dir / "summary.csv")
    assert table.index.name == "scheme"
    assert list(table.index) == [row["scheme"] for row in summary] == SCHEMES
    assert list(table.columns) == list(KPI_UNITS)
    for row in summary:
        for kpi in KPI_UNITS:
            assert table.loc[row["scheme"], kpi] == pytest.approx(float(row[kpi]), rel=1e-12), kpi
    for kpi in COUNT_KPIS:
        assert table[kpi].dtype == np.int64
    assert table.attrs["complete"] == dict.fromkeys(SCHEMES, True)


def test_compare_without_summary_and_foreign_files(cmp_dir, tmp_path):
    for s in SCHEMES:
        os.symlink(cmp_dir / f"{s}.h5", tmp_path / f"{s}.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.warns(UserWarning, match="other.h5"):
        table = results.compare(tmp_path)
    assert list(table.index) == sorted(SCHEMES)  # by file name
    with pytest.raises(ValueError, match="not a tsodso results file"):
        results.compare(tmp_path / "other.h5")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no tsodso results"):
        results.compare(empty)


def test_export_csv(cmp_dir, tmp_path):
    paths = results.export(cmp_dir, "csv", out_dir=tmp_path)
    assert paths == [tmp_path / "kpis.csv",
                     *(tmp_path / f"{t}_{s}.csv" for t in ("costs", "activations", "conflicts",
                                                           "events") for s in SCHEMES)]
    assert all(p.is_file() for p in paths)
    kpis = pd.read_csv(paths[0], index_col="scheme")
    pd.testing.assert_frame_equal(kpis, results.compare(cmp_dir), check_exact=False, rtol=1e-12)
    for s, p in zip(SCHEMES, paths[1:1 + len(SCHEMES)], strict=True):
        costs = pd.read_csv(p, index_col="time", parse_dates=["time"])
        pd.testing.assert_frame_equal(costs, results.open(cmp_dir / f"{s}.h5").costs,
                                      check_exact=False, rtol=1e-12, check_freq=False)


def test_export_xlsx(cmp_dir, hand_file, tmp_path):
    (path,) = results.export(cmp_dir, "xlsx", out_dir=tmp_path)
    assert path == tmp_path / "results.xlsx" and path.is_file()
    sheets = pd.read_excel(path, sheet_name=None, index_col=0)
    # Excel stores numbers, not ints and floats: 0.0 comes back as int, hence no dtype checks
    assert list(sheets) == ["kpis", *(f"{t}_{s}" for t in ("costs", "activations", "conflicts",
                                                           "events") for s in SCHEMES),
                            "runs", "units"]
    pd.testing.assert_frame_equal(sheets["kpis"], results.compare(cmp_dir), check_exact=False,
                                  rtol=1e-12, check_dtype=False)
    for s in SCHEMES:
        pd.testing.assert_frame_equal(sheets[f"costs_{s}"],
                                      results.open(cmp_dir / f"{s}.h5").costs,
                                      check_exact=False, rtol=1e-12, check_freq=False,
                                      check_dtype=False)
    assert sheets["runs"]["complete"].tolist() == [True, True]
    # a single file: prefixed names next to it by default
    (single,) = results.export(hand_file, "xlsx")
    assert single == hand_file.with_suffix(".xlsx")
    assert [p.name for p in results.export(hand_file, "csv")] == [
        "hand_kpis.csv", "hand_costs_centralized.csv", "hand_activations_centralized.csv",
        "hand_conflicts_centralized.csv", "hand_events_centralized.csv"]
    with pytest.raises(ValueError, match="format"):
        results.export(cmp_dir, "json", out_dir=tmp_path)


# -- xarray, directly on the files ---------------------------------------------------------


def test_xarray_open_dataset(cmp_dir):
    path = cmp_dir / "shared_balancing.h5"
    with h5py.File(path, "r") as f:
        grids = list(f["grids"])
        with xr.open_dataset(path, engine="h5netcdf") as root:
            # CF time: decoded to timestamps, in the root and in every group with a time axis
            want = pd.date_range("2016-06-15 10:00", periods=STEPS, freq="15min").values
            np.testing.assert_array_equal(root["time"].values, want)
            assert root["time"].encoding["units"] == "seconds since 2016-06-15 10:00:00"
            for group in [f"grids/{g}" for g in grids] + ["interfaces", "needs", "costs"]:
                with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
                    np.testing.assert_array_equal(ds["time"].values, want)
        for g in grids:
            with xr.open_dataset(path, engine="h5netcdf", group=f"grids/{g}") as ds:
                assert ds["vm_pu"].dims == ("time", "bus")
                assert ds["branch_loading_percent"].dims == ("time", "branch")
                assert ds["bus"].values.tolist() == list(f[f"grids/{g}/bus"].asstr()[:])
                np.testing.assert_array_equal(ds["vm_pu"].values, f[f"grids/{g}/vm_pu"][:])
                assert ds["vm_pu"].attrs["units"] == "pu"
                assert ds.attrs["level"] == f[f"grids/{g}"].attrs["level"]
        with xr.open_dataset(path, engine="h5netcdf", group="interfaces") as ds:
            assert ds["p_mw"].dims == ("time", "name") and ds["grid"].dims == ("name",)
        with xr.open_dataset(path, engine="h5netcdf", group="costs") as ds:
            assert ds["dso_by_grid"].dims == ("time", "dso_grid")
        with xr.open_dataset(path, engine="h5netcdf", group="activations") as ds:
            assert ds["buyer"].dims == ("row",)
            assert ds["buyer"].values.tolist() == list(f["activations/buyer"].asstr()[:])


def test_xarray_open_datatree_units_everywhere(cmp_dir, killed_file):
    path = cmp_dir / "centralized.h5"
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        n_vars = 0
        for node in tree.subtree:
            for name, var in node.to_dataset(inherit=False).variables.items():
                # decoded CF times keep their units in .encoding
                assert "units" in var.attrs or "units" in var.encoding, f"{node.path}/{name}"
                n_vars += 1
        with h5py.File(path, "r") as f:
            # every HDF5 dataset is an xarray variable; the datatree shows the groups' time
            # coordinates (equal to the root's) once, at the root
            assert n_vars == len([d for d in _datasets(f) if not d.endswith("/time")])
        # every group with a time axis has its own CF time coordinate
        want = pd.date_range("2016-06-15 10:00", periods=STEPS, freq="15min").values
        np.testing.assert_array_equal(tree["grids/HV1"]["time"].values, want)
    # a killed run: SWMR reading through h5netcdf
    with xr.open_dataset(killed_file, engine="h5netcdf", group="grids/MV1.101",
                         driver_kwds={"swmr": True}) as ds:
        assert ds.sizes["time"] == KILLED_N
        assert ds["vm_pu"].values[0, 2] == 0.94  # make_record: D bus d2 at 0.94 pu when t % 25 == 0


def _datasets(f: h5py.File) -> list[str]:
    out: list[str] = []
    f.visititems(lambda name, o: out.append(name) if isinstance(o, h5py.Dataset) else None)
    return out

