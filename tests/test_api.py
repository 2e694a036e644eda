"""The Python API: `import tsodso` stays cheap, overrides are validated like a file, `run` and
`compare` return the results objects, and the example script runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tsodso

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_cheap():
    code = ("import sys, tsodso; heavy = [m for m in ('numpy', 'highspy', 'pandapower', "
            "'pydantic') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_overrides_of_any_depth_are_validated():
    sc = tsodso.load_scenario("tiny", **{"run.steps": 8, "flexibility.pv.share": 0.3,
                                         "forecast.wind.sigma": 0.0}, run__seed=5)
    assert (sc.run.steps, sc.run.seed, sc.flexibility.pv.share) == (8, 5, 0.3)
    assert (sc.forecast.wind.sigma, sc.forecast.wind.rho, sc.forecast.wind.common) == \
        (0.0, 0.95, 0.6)  # the rest of the section keeps wind's defaults
    again = tsodso.load_scenario(sc, forecast={"pv": {"sigma": 0.0}})
    assert again.forecast.pv.sigma == 0.0 and again.run.steps == 8
    with pytest.raises(tsodso.ScenarioError, match="unknown key 'run.stepz'"):
        tsodso.load_scenario("tiny", **{"run.stepz": 8})
    with pytest.raises(tsodso.ScenarioError, match="flexibility.pv.share"):
        tsodso.load_scenario("tiny", **{"flexibility.pv.share": 3})
    with pytest.raises(tsodso.ScenarioError, match="no scenario file"):
        tsodso.load_scenario("no-such-scenario")


def test_run_and_compare_return_results_objects(tmp_path):
    from tsodso.results import Run

    sc = tsodso.load_scenario("tiny", **{"run.steps": 2})
    run = tsodso.run(sc, "none", tmp_path / "r.h5")
    assert isinstance(run, Run) and run.steps == 2
    table = tsodso.compare(sc, ["none", "common"], tmp_path / "cmp")
    assert list(table.index) == ["none", "common"]
    assert table.attrs["dir"] == tmp_path / "cmp"
    assert tsodso.compare(sc, "none", tmp_path / "one").shape[0] == 1  # module imported now
    with pytest.raises(ValueError, match="unknown scheme"):
        tsodso.run(sc, "nope", tmp_path / "x.h5")


def test_example_script_runs(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"),
                          str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    for png in ("voltages.png", "costs.png", "total_cost.png"):
        assert (tmp_path / png).stat().st_size > 1000
