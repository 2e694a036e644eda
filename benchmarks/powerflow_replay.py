"""Replay the power-flow solves of one run with the solver of several commits, same command.

    python benchmarks/powerflow_replay.py [STEPS] [SCHEME] [COMMIT ...]
    # default: 32 common 54de800 cb401a1 0ae93d1 8e2847d c5c4e93 HEAD

Records every `GridModel.solve` call (injections, slack voltages) of a `default` run of SCHEME
with today's code, then, for each COMMIT in its own process, loads that commit's
`core/powerflow.py`, builds fresh models (`prepare`) and solves the recorded calls in order.
Prints per level ms per solve, Newton steps per solve, LU factorisations, and the largest
voltage difference to the first COMMIT's results. Every commit sees the same inputs, so the
solver's cost is compared without the rest of the run (and without the run's load swings).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COMMITS = ["54de800", "cb401a1", "0ae93d1", "8e2847d", "c5c4e93", "HEAD"]


def record(steps: int, scheme: str, path: Path) -> None:
    from tsodso.core import powerflow
    from tsodso.scenarios.load import load

    from tsodso.runner import run

    calls = []
    original = powerflow.GridModel.solve

    def rec(self, *args, v_ref=None):
        calls.append((len(self.net.bus), [np.array(a, copy=True) for a in args],
                      None if v_ref is None else np.array(v_ref, copy=True)))
        return original(self, *args, v_ref=v_ref)

    powerflow.GridModel.solve = rec
    with tempfile.TemporaryDirectory() as tmp:
        run(load("default", {"run.steps": steps}), scheme, Path(tmp) / "r.h5")
    powerflow.GridModel.solve = original
    path.write_bytes(pickle.dumps((steps, calls)))


def replay(calls_path: str, commit: str, out: str) -> None:
    """In its own process: the recorded calls with `commit`'s solver."""
    from bench_powerflow import use_solver_of

    use_solver_of(commit)
    from tsodso.core import powerflow
    from tsodso.scenarios.load import load
    from tsodso.scenarios.world import prepare

    factorisations = [0]
    real_splu = powerflow.splu

    def counted(*args, **kwargs):
        factorisations[0] += 1
        return real_splu(*args, **kwargs)

    powerflow.splu = counted
    steps, calls = pickle.loads(Path(calls_path).read_bytes())
    ctx = prepare(load("default", {"run.steps": steps}), "none")
    models = {len(rt.model.net.bus): rt.model for rt in ctx.levels.values()}
    factorisations[0] = 0
    stats = {nb: [0, 0.0, 0] for nb in models}  # solves, seconds, Newton steps
    vm = []
    for nb, args, v_ref in calls:
        t0 = time.perf_counter()
        res = models[nb].solve(*args, v_ref=v_ref)
        stats[nb][1] += time.perf_counter() - t0
        stats[nb][0] += 1
        stats[nb][2] += res.iterations
        vm.append(res.vm_pu)
    Path(out).write_bytes(pickle.dumps((stats, factorisations[0], vm)))


def main(steps: int, scheme: str, commits: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls.pkl"
        record(steps, scheme, calls)
        print(f"default/{scheme}, {steps} steps: the run's solves replayed per commit")
        print(f"{'commit':9s} {'D ms/solve':>10s} {'steps':>6s} {'T ms/solve':>10s} "
              f"{'steps':>6s} {'LU':>6s} {'ms/step':>8s} {'max|dV| to first':>17s}")
        first = None
        for commit in commits:
            out = Path(tmp) / f"{commit}.pkl"
            subprocess.run([sys.executable, __file__, "--child", str(calls), commit, str(out)],
                           check=True)
            stats, lu, vm = pickle.loads(out.read_bytes())
            first = vm if first is None else first
            dv = max(float(np.nanmax(np.abs(a - b), initial=0.0))
                     for a, b in zip(vm, first, strict=True))
            (nd, sd, itd), (nt, st, itt) = (stats[max(stats)], stats[min(stats)])
            print(f"{commit:9s} {1e3 * sd / nd:10.2f} {itd / nd:6.2f} {1e3 * st / nt:10.2f} "
                  f"{itt / nt:6.2f} {lu:6d} {1e3 * (sd + st) / steps:8.1f} {dv:17.1e}",
                  flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--child":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        replay(args[1], args[2], args[3])
        sys.exit(0)
    main(int(args[0]) if args else 32, args[1] if len(args) > 1 else "common",
         args[2:] or COMMITS)
