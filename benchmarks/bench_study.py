"""Studies on Dask: speed-up of 1 vs 2 workers, the overhead per task against a plain loop, and
the peak memory per worker, all measured in this one command.

    python benchmarks/bench_study.py [STEPS]      # default: 12 tiny runs of 24 steps

The study is 12 `tiny` runs (2 schemes x 6 seeds). Every measurement starts warm: the
workers (and, for the loop, this process) have imported tsodso and run one run before the
clock starts, so the times compare running, not start-up. Printed:

- loop: the 12 runs one after another in this process (`tsodso.study.execute`, the task
  itself, called directly);
- dask 1 worker, dask 2 workers: the same tasks through a LocalCluster of one-thread
  workers, from submit to the last result;
- speed-up = time on 1 worker / time on 2 workers;
- dask 1 worker / plain loop: the whole difference, Dask and the machine's load together;
- overhead per task = (dask 1 worker - the tasks' own time inside the worker) / 12, and as a
  share of a run (target <= 5 %): what Dask adds around each run (scheduling, sending the
  scenario, returning the row), measured in the same interval, so that other load on a
  shared machine does not move it;
- peak memory per worker: the largest resident set (ru_maxrss) any worker reported.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.study import execute, load_study, plan  # noqa: E402

STUDY = """
name = "bench"
scenario = "tiny"
schemes = ["local", "common"]
seeds = "1-6"
days = [2016-06-15T06:00:00]
[set]
"run.steps" = {steps}
"""


def _tasks(root: Path, steps: int) -> list[tuple]:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bench.toml"
    path.write_text(STUDY.format(steps=steps), encoding="utf-8")
    return [(s.scenario.model_dump(mode="python"), s.scheme, str(s.out), s.row(root))
            for s in plan(load_study(path), root / "runs")]


def _warm(root: Path, steps: int) -> tuple:
    """One run outside the measured ones (imports, the tiny grid's set-up)."""
    return _tasks(root / "warm", steps)[0]


def timed(*task: object) -> tuple[dict, float]:
    """The task, and the seconds it took inside the worker (what a plain loop spends on it)."""
    t0 = time.perf_counter()
    row = execute(*task)
    return row, time.perf_counter() - t0


def loop(steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        execute(*_warm(Path(tmp), steps))
        tasks = _tasks(Path(tmp), steps)
        t0 = time.perf_counter()
        for t in tasks:
            row = execute(*t)
            assert row["status"] == "ok", row["error"]
        return time.perf_counter() - t0


def on_dask(steps: int, workers: int) -> tuple[float, float, float]:
    """Wall time from submit to the last result, the tasks' own time summed, peak MB."""
    from distributed import Client, LocalCluster, wait

    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        warm = _warm(Path(tmp), steps)
        # one warm-up run on every worker, each in its own folder
        futs = [client.submit(execute, *warm[:2], str(Path(tmp) / f"w{i}" / "x.h5"), warm[3],
                              workers=[w], pure=False)
                for i, w in enumerate(client.scheduler_info()["workers"])]
        wait(futs)
        tasks = _tasks(Path(tmp), steps)
        t0 = time.perf_counter()
        futs = [client.submit(timed, *t, pure=False) for t in tasks]
        out = client.gather(futs)
        spent = time.perf_counter() - t0
        rows = [r for r, _ in out]
        assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
        return spent, sum(t for _, t in out), max(r["peak_mb"] for r in rows)


def main(steps: int = 24) -> None:
    n = 12
    t_loop = loop(steps)
    t1, busy1, mem1 = on_dask(steps, 1)
    t2, _, mem2 = on_dask(steps, 2)
    per_run = busy1 / n
    overhead = (t1 - busy1) / n  # one worker: everything that is not a run is Dask's
    print(f"{n} tiny runs of {steps} steps (2 schemes x 6 seeds), warm workers")
    print(f"  loop in one process : {t_loop:7.1f} s ({t_loop / n:.2f} s per run)")
    print(f"  dask, 1 worker      : {t1:7.1f} s (the runs themselves {busy1:.1f} s)")
    print(f"  dask, 2 workers     : {t2:7.1f} s")
    print(f"  speed-up 1 -> 2 workers       : {t1 / t2:.2f}x")
    print(f"  dask 1 worker / plain loop    : {t1 / t_loop:.3f}")
    print(f"  overhead per task on 1 worker : {overhead * 1000:.0f} ms "
          f"({100 * overhead / per_run:.2f} % of a run; target <= 5 %)")
    print(f"  peak memory per worker        : {max(mem1, mem2):.0f} MB")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
