"""Whole runs of the co-simulation on `tiny`: file contract, balancing, determinism, interrupts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from tsodso.core.vocabulary import SOCIAL_KEYS
from tsodso.results.read import read_meta, steps_written

from tests.conftest import ZERO_ERRORS, make_scenario
from tsodso.runner import run


@pytest.fixture(scope="module")
def centralized_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "c.h5"
    sc = make_scenario(steps=12, start="2016-06-15T08:00:00")
    kpis = run(sc, "centralized", path, profile=True)
    return sc, path, kpis


def test_file_contract(centralized_run):
    sc, path, kpis = centralized_run
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "tsodso-results" and a["format_version"] == 3
        assert a["scheme"] == "centralized" and a["scenario"] == sc.name
        assert bool(a["complete"]) and a["n_steps"] == 12 and a["step_s"] == 900
        assert "[run]" in a["scenario_toml"]
        assert list(f["time"][:]) == [900 * k for k in range(12)]
        levels = {g: f["grids"][g].attrs["level"] for g in f["grids"]}
        assert sorted(levels.values()) == ["D", "D", "T"]
        for g in f["grids"]:
            grp = f["grids"][g]
            assert grp["vm_pu"].shape == (12, len(grp["bus"]))
            assert grp["branch_loading_percent"].shape == (12, len(grp["branch"]))
            assert np.all((grp["vm_pu"][:] > 0.8) & (grp["vm_pu"][:] < 1.2))
        assert f["interfaces/p_mw"].shape == (12, len(f["interfaces/name"]))
        assert set(f["interfaces/grid"].asstr()[:]) == {g for g, lv in levels.items() if lv == "D"}
        total = sum(f["costs"][k][:] for k in SOCIAL_KEYS)
        np.testing.assert_allclose(f["costs/social"][:], total)
        # the resource cost is the activations at their bid prices; the TSO's payments are
        # what it paid under the pricing rule (a transfer, not in the social cost)
        step = f["activations/step"][:]
        bid = np.bincount(step, weights=f["activations/bid_price"][:] * f["activations/mw"][:]
                          * 0.25, minlength=12)
        np.testing.assert_allclose(f["costs/resource"][:], bid, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(f["costs/tso"][:], np.bincount(
            step, weights=f["activations/cost"][:], minlength=12), rtol=1e-12, atol=1e-9)
        assert set(f["activations/buyer"].asstr()[:]) <= {"TSO"}
        for key in ("powerflow_s", "clearing_s", "total_s"):
            assert f["timing"].attrs[key] > 0
    assert kpis["social_cost_eur"] == pytest.approx(float(total.sum()))


def test_tso_need_is_met_or_recorded(centralized_run):
    """Per step: net activated MW + unserved MW == the TSO's need (minus the imbalance)."""
    _, path, kpis = centralized_run
    with h5py.File(path, "r") as f:
        need = -f["needs/tso_imbalance_mw"][:]
        unserved = f["needs/unresolved_imbalance_mw"][:]
        step = f["activations/step"][:]
        net = np.bincount(step, weights=f["activations/direction"][:] * f["activations/mw"][:],
                          minlength=len(need))
        cost = f["activations/mw"][:] * f["activations/price"][:] * 0.25
        np.testing.assert_allclose(f["activations/cost"][:], cost)
    assert np.any(np.abs(need) > 0.1), "the scenario must have a balancing need"
    np.testing.assert_allclose(net + unserved, need, atol=1e-5)
    assert kpis["activated_mwh"] > 0


def test_zero_forecast_error_means_no_imbalance(tmp_path):
    path = tmp_path / "z.h5"
    run(make_scenario(steps=3, extra=ZERO_ERRORS), "centralized", path)
    with h5py.File(path, "r") as f:
        assert np.all(f["needs/tso_imbalance_mw"][:] == 0.0)
        assert len(f["activations/step"]) == 0 or np.all(
            f["activations/kind"].asstr()[:] != "balancing")


def test_same_seed_same_results(tmp_path):
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths.append(tmp_path / f"{name}.h5")
        run(make_scenario(steps=5, seed=seed), "centralized", paths[-1])
    with h5py.File(paths[0], "r") as a, h5py.File(paths[1], "r") as b, \
            h5py.File(paths[2], "r") as c:
        for key in ("needs/tso_imbalance_mw", "costs/social", "activations/mw",
                    "grids/MV1.101/vm_pu"):
            np.testing.assert_array_equal(a[key][:], b[key][:])
        assert not np.array_equal(a["needs/tso_imbalance_mw"][:], c["needs/tso_imbalance_mw"][:])


def _start(path, steps):
    return subprocess.Popen([sys.executable, "-m", "tsodso.cli", "run", "tiny", "--scheme",
                             "none", "--steps", str(steps), "--out", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(path, proc, at_least: int, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                with h5py.File(path, "r", swmr=True) as f:
                    if steps_written(f) >= at_least:
                        return
            except OSError:
                pass
        time.sleep(0.3)
    raise AssertionError("run did not reach the expected number of steps in time")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_leaves_readable_file(tmp_path, sig):
    path = tmp_path / "killed.h5"
    # a run far longer than the wait: when the machine is busy the reader may see the first
    # block late, and the interrupt must still land mid-run
    proc = _start(path, 12000)
    _wait_for_steps(path, proc, 96)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=180)
    meta = read_meta(path)
    assert meta["complete"] is False
    assert meta["steps_written"] >= 96
    with h5py.File(path, "r", swmr=True) as f:
        n = steps_written(f)
        assert list(f["time"][:n]) == [900 * k for k in range(n)]
        assert np.all(np.isfinite(f["grids/HV1/vm_pu"][:n]))
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert "interrupted" in err and "Traceback" not in err
