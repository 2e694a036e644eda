"""`tsodso compare`: one file per scheme, a summary with the KPIs of each, same inputs."""

from __future__ import annotations

import csv

import h5py
import numpy as np
from click.testing import CliRunner
from tsodso.results.kpis import KPI_UNITS

from tsodso.cli import main


def test_compare_tiny(tmp_path):
    out = tmp_path / "cmp"
    res = CliRunner().invoke(main, ["compare", "tiny", "--schemes", "none,centralized",
                                    "--steps", "6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "summary.csv" in res.output
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["scheme"] for r in rows] == ["none", "centralized"]
    assert set(rows[0]) == {"scheme", *KPI_UNITS}
    with h5py.File(out / "none.h5") as a, h5py.File(out / "centralized.h5") as b:
        # same grid, day, forecasts: the imbalance before activations is identical
        np.testing.assert_array_equal(a["needs/tso_imbalance_mw"][:],
                                      b["needs/tso_imbalance_mw"][:])
        assert float(rows[0]["social_cost_eur"]) == a["kpis"].attrs["social_cost_eur"]
    # the market pays for flexibility instead of the imbalance penalty
    assert float(rows[1]["unserved_imbalance_mwh"]) < float(rows[0]["unserved_imbalance_mwh"])
    assert float(rows[1]["social_cost_eur"]) < float(rows[0]["social_cost_eur"])


def test_compare_unknown_scheme(tmp_path):
    res = CliRunner().invoke(main, ["compare", "tiny", "--schemes", "none,magic"])
    assert res.exit_code == 2
    assert "unknown scheme(s) magic" in res.output


def test_export_cli(tmp_path):
    out = tmp_path / "cmp"
    assert CliRunner().invoke(main, ["compare", "tiny", "--schemes", "none,common", "--steps",
                                     "3", "--out", str(out)]).exit_code == 0
    res = CliRunner().invoke(main, ["export", str(out), "--format", "csv"])
    assert res.exit_code == 0, res.output
    kpis = list(csv.DictReader((out / "kpis.csv").open()))
    assert [r["scheme"] for r in kpis] == ["none", "common"]
    assert (out / "costs_common.csv").exists()
    bad = CliRunner().invoke(main, ["export", str(tmp_path), "--format", "csv"])
    assert bad.exit_code == 2 and bad.output.startswith("error:")


def test_compare_workers_do_not_change_results(tmp_path):
    """Schemes side by side in two processes give the same KPIs as one after the other."""
    sums = {}
    for n in ("1", "2"):
        out = tmp_path / f"w{n}"
        res = CliRunner().invoke(main, ["compare", "tiny", "--schemes", "none,common",
                                        "--steps", "4", "--workers", n, "--out", str(out)])
        assert res.exit_code == 0, res.output
        sums[n] = (out / "summary.csv").read_text()
    assert sums["1"] == sums["2"]
    res = CliRunner().invoke(main, ["compare", "tiny", "--workers", "0"])
    assert res.exit_code == 2 and "--workers" in res.output


def test_start_option_moves_the_window(tmp_path):
    """--start picks the first step (a year of `default` needs 2016-01-01): the file's start
    and the profiles read are those of the new window; a start whose window runs past the
    profile year is one line, exit 2."""
    out = tmp_path / "jan.h5"
    res = CliRunner().invoke(main, ["run", "tiny", "--scheme", "none", "--steps", "2",
                                    "--start", "2016-01-01T06:00", "--out", str(out)])
    assert res.exit_code == 0, res.output
    june = tmp_path / "june.h5"
    res = CliRunner().invoke(main, ["run", "tiny", "--scheme", "none", "--steps", "2",
                                    "--out", str(june)])
    assert res.exit_code == 0, res.output
    with h5py.File(out) as a, h5py.File(june) as b:
        assert a.attrs["start"] == "2016-01-01T06:00:00"
        assert b.attrs["start"] == "2016-06-15T00:00:00"  # tiny's own start
        # other quarter hours of the profile year: other realised injections
        assert not np.allclose(a["needs/tso_imbalance_mw"][:], b["needs/tso_imbalance_mw"][:])
    res = CliRunner().invoke(main, ["compare", "tiny", "--schemes", "none", "--steps", "200",
                                    "--start", "2016-12-31", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "past the end of the profile year 2016" in lines[0]


def test_longest_first_starts_the_dearest_scheme_first():
    """Side by side, compare starts the schemes dearest step first (by `step_cost`), so that
    a short run fills in behind a long one; the table keeps its own order."""
    from pathlib import Path

    from tsodso.coordination.schemes import scheme_class, scheme_names

    from tsodso.comparison import longest_first

    jobs = [("text", s, Path(f"{s}.h5")) for s in scheme_names()]
    order = [job[1] for job in longest_first(jobs)]
    assert order[0] == "integrated" and order[-1] == "none"
    costs = [scheme_class(s).step_cost for s in order]
    assert costs == sorted(costs, reverse=True)
    assert sorted(order) == sorted(scheme_names())
    # equal costs keep the order given
    ties = [("t", "local", Path("a.h5")), ("t", "common", Path("c.h5")),
            ("t", "local", Path("b.h5"))]
    assert [j[2].stem for j in longest_first(ties)] == ["a", "b", "c"]


def test_every_scheme_runs_in_a_fresh_process():
    """compare's pool gives each job its own process (a run's memory is its own), forked from
    a server that already holds the simulator's modules."""
    import os

    from tsodso.comparison import PRELOAD, fresh_processes

    with fresh_processes(2) as pool:
        pids = [f.result() for f in [pool.submit(os.getpid) for _ in range(4)]]
        loaded = pool.submit(_loaded_before_use, PRELOAD).result()
    assert len(set(pids)) == 4 and os.getpid() not in pids
    assert loaded == PRELOAD


def _loaded_before_use(names: list[str]) -> list[str]:
    """The modules among `names` a fresh worker holds before it imports anything itself."""
    import sys

    return [n for n in names if n in sys.modules]
