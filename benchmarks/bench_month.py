"""One month of one scheme on `default`: cost per step week by week, a year extrapolated,
peak memory against a one-day run of the same scheme.

    python benchmarks/bench_month.py [SCHEME] [STEPS] [START]
    # default: none 2976 (31 days) from the scenario's start (30 May 2016); a year:
    python benchmarks/bench_month.py none 35136 2016-01-01

Each run is its own process (peak RSS is per process). The month run records the wall time
of every step (through the runner's progress callback) and prints ms/step per week, the ratio
last week / first week (target <= 1.1: the cost per step stays flat), per week the power flow
and clearing and the rest of the step (wall), so that a growth can be told from a week whose
grid states need more Newton iterations, the year (35,136 steps)
extrapolated from the month's mean, and peak RSS of the month against a 96-step run (target:
ratio <= 1.1, peak <= 1 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

YEAR = 35_136
WEEK = 672


def child(scheme: str, steps: int, start: str | None = None) -> dict:
    """Run `steps` of `scheme` on default in this process; step end times and peak RSS."""
    import resource

    from tsodso.scenarios.load import load

    import tsodso.runner as runner

    stamps: list[tuple[float, ...]] = []
    timings: list = []

    class Recorded(runner.Timing):  # the run's timing, read at every step
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            timings.append(self)

    class Clock:  # stands in for the progress bar: the runner calls update() once per step
        def __init__(self, *args, **kwargs) -> None:
            pass

        def update(self, n: int = 1) -> None:
            t = timings[-1]
            stamps.append((time.perf_counter(), time.process_time(), t.powerflow_s,
                           t.clearing_s))

        def close(self) -> None:
            pass

    runner.tqdm = Clock
    runner.Timing = Recorded
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.h5"
        runner.run(load("default", {"run.steps": steps, "run.start": start}), scheme, out,
                   profile=True)
        import h5py

        with h5py.File(out, "r") as f:
            timing = {k: float(v) for k, v in f["timing"].attrs.items()}
    return {"stamps": stamps, "timing": timing,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _spawn(scheme: str, steps: int, start: str | None) -> dict:
    code = ("import json,sys;sys.path.insert(0,'.');from benchmarks.bench_month import child;"
            f"print(json.dumps(child({scheme!r},{steps},{start!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(scheme: str, steps: int, start: str | None = None) -> None:
    day = _spawn(scheme, 96, start)
    month = _spawn(scheme, steps, start)
    st = month["stamps"]
    t = month["timing"]
    print(f"default/{scheme}, {steps} steps from {start or 'the scenario start'} "
          f"(set-up {t['setup_s']:.1f} s, simulate "
          f"{t['simulate_s']:.0f} s; power flow {1e3 * t['powerflow_s'] / steps:.1f}, clearing "
          f"{1e3 * t['clearing_s'] / steps:.1f} ms/step)")
    # wall time, and CPU time of the process (what a busy shared machine does not inflate)
    ratios = []
    for j, what in ((0, "wall"), (1, "CPU")):
        per_step = [b[j] - a[j] for a, b in zip(st, st[1:], strict=False)]
        weeks = [per_step[i:i + WEEK] for i in range(0, len(per_step), WEEK)]
        weeks = [w for w in weeks if len(w) >= WEEK // 2]
        print(f"  {what:4s} ms/step per week: " + ", ".join(
            f"{1e3 * sum(w) / len(w):.1f}" for w in weeks))
        ratios.append((what, (sum(weeks[-1]) / len(weeks[-1])) / (sum(weeks[0]) / len(weeks[0]))))
    per = [[b[j] - a[j] for a, b in zip(st, st[1:], strict=False)] for j in range(4)]
    spans = [(i, min(i + WEEK, len(per[0]))) for i in range(0, len(per[0]), WEEK)]
    spans = [(lo, hi) for lo, hi in spans if hi - lo >= WEEK // 2]

    def week_ms(j: int) -> list[float]:
        return [1e3 * sum(per[j][lo:hi]) / (hi - lo) for lo, hi in spans]

    pf, clr = week_ms(2), week_ms(3)
    rest = [w - p - c for w, p, c in zip(week_ms(0), pf, clr, strict=True)]
    print("  wall ms/step per week: power flow " + ", ".join(f"{x:.1f}" for x in pf)
          + "; clearing " + ", ".join(f"{x:.1f}" for x in clr)
          + "; everything else " + ", ".join(f"{x:.1f}" for x in rest))
    print(f"  everything else last week / first week: {rest[-1] / rest[0]:.3f}")
    print("ratio last week / first week: " + ", ".join(f"{r:.3f} ({w})" for w, r in ratios)
          + " (target <= 1.1)")
    mean = t["simulate_s"] / steps
    print(f"a year ({YEAR} steps) extrapolated: {mean * YEAR / 3600:.2f} h of simulation "
          f"+ set-up ({1e3 * mean:.1f} ms/step)")
    print(f"peak RSS: 96 steps {day['peak_mib']:.0f} MiB, {steps} steps "
          f"{month['peak_mib']:.0f} MiB, ratio {month['peak_mib'] / day['peak_mib']:.3f} "
          f"(target <= 1.1, peak <= 1024 MiB)")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "none", int(args[1]) if len(args) > 1 else 2976,
         args[2] if len(args) > 2 else None)
