"""Scenario files: validation with one-line errors, built-ins, overrides."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from tsodso.scenarios.load import ScenarioError, builtin_names, load

from tsodso.cli import main

BAD = {
    "unknown key": ("name = 'x'\n[run]\nstepz = 3\n", "unknown key 'run.stepz'"),
    "wrong type": ("name = 'x'\n[run]\nsteps = 'many'\n", "key 'run.steps'"),
    "out of range": ("name = 'x'\n[limits.D]\nvm_min_pu = 1.2\n", "key 'limits.D.vm_min_pu'"),
    "past the year": ("name = 'x'\n[run]\nstart = 2016-12-31T00:00:00\nsteps = 200\n",
                      "past the end of the profile year"),
    "not toml": ("name = \n", "not valid TOML"),
    "unknown section": ("name = 'x'\n[markets]\npricing = 'x'\n", "unknown key 'markets'"),
    "bad choice": ("name = 'x'\n[market]\npricing = 'free'\n", "key 'market.pricing'"),
    "missing name": ("[run]\nsteps = 3\n", "missing key 'name'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_is_one_line_exit_2(tmp_path, case):
    text, expected = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    with pytest.raises(ScenarioError):
        load(str(path))


def test_run_with_bad_scenario_no_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = 'x'\n[run]\nsteps = -4\n")
    proc = subprocess.run([sys.executable, "-m", "tsodso.cli", "run", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "run.steps" in proc.stderr


def test_unknown_scenario_name():
    res = CliRunner().invoke(main, ["run", "no-such-scenario"])
    assert res.exit_code == 2
    assert "no scenario file 'no-such-scenario'" in res.output


def test_unknown_simbench_code(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("name = 'x'\n[grid]\ncode = 'not-a-grid'\n[run]\nsteps = 1\n")
    res = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o.h5")])
    assert res.exit_code == 2
    assert "unknown SimBench grid code 'not-a-grid'" in res.output
    assert res.output.strip().count("\n") == 0


def test_builtins_listed_and_valid():
    assert {"default", "tiny"} <= set(builtin_names())
    res = CliRunner().invoke(main, ["scenarios"])
    assert res.exit_code == 0
    assert "default" in res.output and "tiny" in res.output
    for name in ("default", "tiny"):
        assert CliRunner().invoke(main, ["validate", name]).exit_code == 0
    sc = load("default")
    assert sc.grid.code == "1-HVMV-mixed-all-2-sw" and sc.run.steps == 96
    assert sc.run.step_s == 900


def test_overrides_and_zero_error():
    sc = load("tiny", {"run.steps": 960, "run.seed": 7})
    assert sc.run.steps == 960 and sc.run.seed == 7
    year = load("tiny", {"run.steps": 35136, "run.start": "2016-01-01T00:00:00"})
    assert year.run.steps == 35136
    with pytest.raises(ScenarioError, match="past the end"):
        load("tiny", {"run.steps": 35136})
