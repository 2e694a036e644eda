"""Every scheme on `default` for a stretch of steps, side by side as `tsodso compare` runs them,
and a year of all six extrapolated against the 30-minute target of issue 11.

    python benchmarks/bench_year.py [STEPS] [WORKERS] [START]
    # default: 2976 steps (31 days), 2 workers, the scenario's own start (30 May 2016)

Runs the schemes as `tsodso compare --workers N` does (the scenario's text to each process;
here one fresh process per scheme, so that its peak memory is its own) and prints per scheme
the set-up, ms per step (power flow, clearing, everything else) and the peak RSS; the wall
time of all runs; and the year (35,136 steps) extrapolated: each scheme's set-up plus its
ms/step x 35,136, scheduled longest first on WORKERS processes, against the 30 minutes of
the target (the ratio is the factor still missing). The per-step cost of a stretch depends
on its weather (a summer month has more PV congestion than a winter one); START (ISO date)
picks another stretch.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.coordination.schemes import scheme_names  # noqa: E402
from tsodso.scenarios.load import load, to_toml  # noqa: E402

YEAR = 35_136
TARGET_MIN = 30.0


def schedule(durations: list[float], workers: int) -> float:
    """Wall time of jobs run longest first, each on the first free worker."""
    free = [0.0] * workers
    for d in sorted(durations, reverse=True):
        i = free.index(min(free))
        free[i] += d
    return max(free)


def one(text: str, scheme: str, out: Path) -> dict:
    """Run one scheme in this (fresh) process: its timing and peak RSS (MiB)."""
    from tsodso.scenarios.load import parse

    from tsodso.runner import run

    run(parse(text, "bench_year"), scheme, out, profile=True)
    with h5py.File(out) as f:
        timing = {k: float(v) for k, v in f["timing"].attrs.items()}
    timing["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timing


def main(steps: int, workers: int, start: str | None) -> None:
    over = {"run.steps": steps}
    if start:
        over["run.start"] = start
    sc = load("default", over)
    names = scheme_names()
    print(f"default from {sc.run.start}, {steps} steps, {len(names)} schemes on {workers} "
          "worker process(es)")
    text = to_toml(sc)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1,
                                 mp_context=mp.get_context("spawn")) as pool:
            futs = {s: pool.submit(one, text, s, Path(tmp) / f"{s}.h5") for s in names}
            timing = {s: f.result() for s, f in futs.items()}
        wall = time.perf_counter() - t0
    print(f"{'scheme':17s} {'set-up':>7s} {'step':>7s} {'pf':>7s} {'clear':>7s} {'rest':>7s}"
          f" {'peak':>6s}   (s; ms/step; MiB)")
    year = []
    for s in names:
        t = timing[s]
        per = 1e3 * t["simulate_s"] / steps
        pf, clr = 1e3 * t["powerflow_s"] / steps, 1e3 * t["clearing_s"] / steps
        print(f"{s:17s} {t['setup_s']:7.1f} {per:7.1f} {pf:7.1f} {clr:7.1f} "
              f"{per - pf - clr:7.1f} {t['peak_mib']:6.0f}")
        year.append(t["setup_s"] + per / 1e3 * YEAR)
    mean = sum(1e3 * timing[s]["simulate_s"] / steps for s in names) / len(names)
    print(f"wall time of the {len(names)} runs: {wall:.0f} s")
    y = schedule(year, workers) / 60
    print(f"a year ({YEAR} steps) of all {len(names)} schemes on {workers} worker(s), "
          f"extrapolated: {y:.0f} min (target {TARGET_MIN:.0f} min; ratio {y / TARGET_MIN:.1f}); "
          f"mean {mean:.1f} ms per scheme-step (budget "
          f"{TARGET_MIN * 60e3 * workers / (YEAR * len(names)):.1f})")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]) if a else 2976, int(a[1]) if len(a) > 1 else 2,
         a[2] if len(a) > 2 else None)
