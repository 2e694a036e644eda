"""Studies on Dask: every case validated before anything runs, the same runs through a real
scheduler and workers (separate processes on the loopback address) as run directly, a lost
worker's runs done again elsewhere, an interrupted study resumed without recomputing what was
finished, and paired statistics that match a hand computation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from tsodso.results.kpis import KPI_UNITS
from tsodso.results.study import paired, ranking_stability

from tsodso.cli import main
from tsodso.study import StudyError, load_study, plan, run_study

STEPS = 4
START = "2016-06-15T10:00:00"


def study_file(tmp_path: Path, body: str = "", name: str = "s", seeds: str = '"1-2"',
               steps: int = STEPS) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(f"""
        name = "{name}"
        scenario = "tiny"
        schemes = ["local", "common"]
        reference = "common"
        seeds = {seeds}
        days = [{START}]
        [set]
        "run.steps" = {steps}
        """) + textwrap.dedent(body), encoding="utf-8")
    return path


# -- validation: before anything runs ----------------------------------------------------------


@pytest.mark.parametrize(("body", "message"), [
    ('[sweep]\n"flexibility.pv.shar" = [0.1, 0.2]\n', "unknown key 'flexibility.pv.shar'"),
    ('[sweep]\n"flexibility.pv.share" = [0.1, 3.0]\n',
     "case (flexibility.pv.share=3.0)"),
    ('[[cases]]\n"penalties.overload_eur_per_mwh" = 20000.0\n',
     "imbalance_eur_per_mwh must exceed overload_eur_per_mwh"),
    ('[sweep]\n"run.seed" = [1, 2]\n', "'run.seed' is set by seeds / days"),
    ('colour = "red"\n', "unknown key 'colour'"),
    ('[[cases]]\n"market.pricing" = "pay_as_clear"\n[[cases]]\n"market.pricing" = '
     '"pay_as_bid"\n[[cases]]\n"market.pricing" = "pay_as_clear"\n',
     "market.pricing=pay_as_clear is listed twice"),
])
def test_a_bad_case_is_one_line_naming_it_and_nothing_runs(tmp_path, body, message):
    path = study_file(tmp_path, body)
    res = CliRunner().invoke(main, ["study", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_study_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('scenario = "tiny"\nschemes = ["comon"]\n', encoding="utf-8")
    with pytest.raises(StudyError, match="unknown scheme 'comon'"):
        load_study(bad)
    with pytest.raises(StudyError, match="range '5-2' is empty"):
        load_study(study_file(tmp_path, seeds='"5-2"'))
    with pytest.raises(StudyError, match="past the end of the profile year"):
        plan(load_study(_late(tmp_path)), tmp_path)


def _late(tmp_path: Path) -> Path:
    path = tmp_path / "late.toml"
    path.write_text('scenario = "tiny"\nschemes = ["local"]\ndays = [2016-12-31T12:00:00]\n'
                    '[set]\n"run.steps" = 96\n', encoding="utf-8")
    return path


def test_grid_and_cases_give_one_folder_per_case(tmp_path):
    path = study_file(tmp_path, """
        [sweep]
        "flexibility.pv.share" = [0.2, 0.4]
        [[cases]]
        "penalties.overload_eur_per_mwh" = 300.0
        [[cases]]
        "penalties.overload_eur_per_mwh" = 3000.0
        """)
    st = load_study(path)
    assert st.params == ["penalties.overload_eur_per_mwh", "flexibility.pv.share"]
    specs = plan(st, tmp_path / "out")
    assert len(specs) == 2 * 2 * 2 * 2  # cases x sweep x seeds x schemes
    assert len({s.out for s in specs}) == len(specs)
    one = specs[-1]
    assert one.scenario.penalties.overload_eur_per_mwh == 3000.0
    assert one.scenario.flexibility.pv.share == 0.4 and one.scenario.run.seed == 2
    assert one.out.relative_to(tmp_path / "out").parts == (
        "penalties.overload_eur_per_mwh=3000.0,flexibility.pv.share=0.4",
        "2016-06-15T1000", "seed-2", "common.h5")


def test_the_cli_does_not_import_dask_on_its_fast_path():
    code = ("import sys\nfrom tsodso.cli import main\n"
            "try:\n    main(['study', '--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('dask', 'distributed', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_failing_run_is_a_row_with_its_reason(tmp_path):
    from tsodso.study import execute

    st = load_study(study_file(tmp_path))
    spec = plan(st, tmp_path / "out")[0]
    (tmp_path / "blocker").write_text("a file where the run's folder should be")
    out = tmp_path / "blocker" / "seed-1" / "local.h5"
    row = execute(spec.scenario.model_dump(mode="python"), spec.scheme, str(out),
                  {"seed": 1, "scheme": "local"})
    assert row["status"] == "failed" and row["seed"] == 1
    assert row["error"].startswith(("FileExistsError", "NotADirectoryError"))
    assert "\n" not in row["error"] and not out.exists()


# -- paired statistics against a hand computation ---------------------------------------------


def test_paired_differences_and_cheapest_by_hand():
    day = pd.Timestamp(START)
    costs = {  # seed -> (scheme A, scheme B)
        1: (100.0, 110.0), 2: (200.0, 190.0), 3: (300.0, 330.0), 4: (400.0, 400.0)}
    rows = [{"day": day, "seed": s, "scheme": name, "status": "ok", "social_cost_eur": c}
            for s, (a, b) in costs.items() for name, c in (("A", a), ("B", b))]
    rows.append({"day": day, "seed": 5, "scheme": "A", "status": "failed",
                 "social_cost_eur": np.nan})
    stats = paired(pd.DataFrame(rows), "A").set_index("scheme")
    diff = np.array([10.0, -10.0, 30.0, 0.0])
    assert stats.loc["B", "n"] == 4 and stats.loc["A", "n"] == 4
    assert stats.loc["B", "diff_mean"] == pytest.approx(diff.mean())
    assert stats.loc["B", "diff_p05"] == pytest.approx(np.quantile(diff, 0.05))
    assert stats.loc["B", "diff_p95"] == pytest.approx(np.quantile(diff, 0.95))
    assert stats.loc["A", "diff_mean"] == 0.0
    # A cheapest in seeds 1, 3, 4 (tie); B in 2 and 4 (tie)
    assert stats.loc["A", "cheapest_share"] == pytest.approx(0.75)
    assert stats.loc["B", "cheapest_share"] == pytest.approx(0.5)
    share, stable, order = ranking_stability(pd.DataFrame(rows))
    # A < B in seeds 1 and 3, B < A in seed 2, a tie in seed 4
    assert order == (("A", 1), ("B", 2)) and stable == pytest.approx(0.5)
    assert share.loc["A", 1] == pytest.approx(0.75) and share.loc["B", 1] == pytest.approx(0.5)


# -- a real Dask cluster: scheduler and two workers as separate processes --------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Dask scheduler and two single-thread workers on 127.0.0.1, started as processes
    (no nanny: a killed worker stays dead); stopped at the end."""
    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
        cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                 "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name",
                 f"w{i}", "--local-directory", str(tmp / f"w{i}")],
                cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _kpis(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index(["seed", "scheme"])[list(KPI_UNITS)].sort_index()


def test_study_through_a_scheduler_matches_direct_runs(cluster, tmp_path):
    from tsodso.scenarios.load import load

    from tsodso.runner import run

    address, _ = cluster
    path = study_file(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["study", str(path), "--out", str(out),
                                    "--scheduler", address])
    assert res.exit_code == 0, res.output
    assert "4 runs (0 failed), paired by case, day and seed against common" in res.output
    table = pd.read_parquet(out / "runs.parquet")
    assert len(table) == 4 and (table["status"] == "ok").all()
    csv = pd.read_csv(out / "runs.csv")
    assert np.allclose(csv["social_cost_eur"], table["social_cost_eur"])
    direct = []  # one scheme per seed, run directly in this process
    for seed, scheme in ((1, "local"), (2, "common")):
        sc = load("tiny", {"run.steps": STEPS, "run.seed": seed, "run.start": START})
        kpis = run(sc, scheme, tmp_path / f"direct-{seed}-{scheme}.h5")
        direct.append({"seed": seed, "scheme": scheme, **kpis})
    a, b = _kpis(table), _kpis(pd.DataFrame(direct))
    pd.testing.assert_frame_equal(a.loc[b.index], b, check_dtype=False, rtol=1e-9, atol=1e-9)
    # the seeds differ in their forecasts, so the draws are not copies of each other
    assert a.loc[(1, "common"), "social_cost_eur"] != a.loc[(2, "common"), "social_cost_eur"]
    for f in table["file"]:
        assert (out / f).is_file()


def test_interrupted_study_resumes_without_recomputing(cluster, tmp_path):
    address, _ = cluster
    st = load_study(study_file(tmp_path, seeds='"1-2"'))
    out = tmp_path / "out"

    def stop(row: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(st, out, scheduler=address, on_result=stop)
    first = pd.read_parquet(out / "runs.parquet")
    assert len(first) == 1  # the table holds the runs finished before the interruption
    done = {f: (out / f).stat().st_mtime_ns for f in first["file"]}
    time.sleep(1.0)  # let runs still in flight when the client left finish or be dropped
    # a file that is not a complete run of this study is redone
    victim = next(s.out for s in plan(st, out) if str(s.out.relative_to(out)) not in done)
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(b"not a results file")
    second = run_study(st, out, scheduler=address)
    assert len(second) == 4 and (second["status"] == "ok").all()
    for f, mtime in done.items():
        assert (out / f).stat().st_mtime_ns == mtime, f"{f} was recomputed"
    again = second.set_index("file").loc[first["file"], list(KPI_UNITS)]
    pd.testing.assert_frame_equal(again.reset_index(drop=True),
                                  first[list(KPI_UNITS)].reset_index(drop=True))
    assert not list(out.rglob("*.part"))
    # a third run finds everything finished: nothing is recomputed, the same table
    mtimes = {f: (out / f).stat().st_mtime_ns for f in second["file"]}
    third = run_study(st, out, scheduler=address)
    assert {f: (out / f).stat().st_mtime_ns for f in third["file"]} == mtimes
    pd.testing.assert_frame_equal(_kpis(third), _kpis(second))


def test_compare_over_seeds_is_paired_by_seed(cluster, tmp_path):
    address, _ = cluster
    out = tmp_path / "cmp"
    res = CliRunner().invoke(main, ["compare", "tiny", "--schemes", "local,common", "--steps",
                                    str(STEPS), "--seeds", "1-2", "--scheduler", address,
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out / "runs.parquet")
    assert sorted(zip(table["seed"], table["scheme"], strict=True)) == [
        (1, "common"), (1, "local"), (2, "common"), (2, "local")]
    # the printed paired difference is local minus the reference, draw by draw
    ref = res.output.split("against ")[1].split(" ")[0]
    wide = table.pivot(index="seed", columns="scheme", values="social_cost_eur")
    other = next(s for s in wide.columns if s != ref)
    line = next(x for x in res.output.splitlines() if x.startswith(other))
    assert f"{(wide[other] - wide[ref]).mean():+,.0f}" in line.split()


def test_a_killed_worker_does_not_lose_runs(cluster, tmp_path):
    """Runs on a worker killed mid-run are run again on the other one (Dask reschedules
    tasks of a lost worker); its temporary file never counts as finished. Last in this
    module: it leaves the cluster with one worker."""
    address, workers = cluster
    st = load_study(study_file(tmp_path, seeds='"1-2"', steps=32))
    out = tmp_path / "out"
    killed = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list(out.rglob("*.part")):
                workers[0].send_signal(signal.SIGKILL)
                killed.append(True)
                return
            time.sleep(0.05)

    import threading

    watcher = threading.Thread(target=kill_when_running)
    watcher.start()
    table = run_study(st, out, scheduler=address)
    watcher.join()
    assert killed and workers[0].wait(timeout=10) == -signal.SIGKILL
    assert len(table) == 4 and (table["status"] == "ok").all(), table["error"].tolist()
    for f in table["file"]:
        assert (out / f).is_file()


# -- the study report ---------------------------------------------------------------------------


def test_study_report_shows_paired_differences_and_sweeps(tmp_path):
    from tsodso.study import Study, _write_table

    day = pd.Timestamp(START).to_pydatetime()
    rows = []
    for p in (1.0, 10.0):
        for seed in range(1, 6):
            base = 1000.0 * seed
            for scheme, order, cost in (("A", 1, base), ("B", 2, base + 7.0 * p + seed)):
                rows.append({"x.p": p, "day": day, "seed": seed, "scheme": scheme,
                             "status": "ok", "error": "", "social_cost_eur": cost,
                             "scheme_label": f"Scheme {scheme}", "scheme_order": order,
                             "file": f"{p}/{seed}/{scheme}.h5"})
    rows.append({"x.p": 1.0, "day": day, "seed": 6, "scheme": "B", "status": "failed",
                 "error": "RuntimeError: solver gave up", "file": "1.0/6/B.h5"})
    st = Study(name="hand", scenario="tiny", schemes=["A", "B"], seeds=list(range(1, 7)),
               days=[day], params=["x.p"], reference="A", source="hand.toml")
    _write_table(rows, st, tmp_path)
    res = CliRunner().invoke(main, ["report", str(tmp_path), "--figures",
                                    str(tmp_path / "fig")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for p in (1.0, 10.0):  # B - A = 7 p + seed; mean over seeds 1..5 = 7 p + 3
        assert f"<td class=num>{7 * p + 3:,.0f}</td>" in page
    assert "RuntimeError: solver gave up" in page and "21 (20 finished, 1 failed)" in page
    assert 'id="fig-sweep-x.p"' in page and 'id="fig-study-costs"' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == ["costs.png",
                                                                    "sweep-x.p.png"]
