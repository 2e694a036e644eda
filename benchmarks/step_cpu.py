"""Everything else of a step against power flow + clearing in CPU time, for a shared machine.

    python benchmarks/step_cpu.py [SCHEMES] [STEPS] [RUNS]   # default: none,centralized,common 96 2
    python benchmarks/step_cpu.py --calls [SCHEMES] [STEPS]  # function calls per time step

The run's own timers (runner: the simulated time; grid: power flow; coordinator: clearing) read
the process's CPU time instead of the wall clock, so other processes on the machine inflate the
figures far less; per scheme the run with the lowest step of RUNS is printed, with "everything
else" (step - power flow - clearing) and its ratio to power flow + clearing (issue 11 item 3).
`--calls` counts the Python and C function calls of the simulated time per time step
(sys.setprofile): deterministic, to compare two versions of the code when even CPU times vary.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
import types
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.scenarios.load import load  # noqa: E402
from tsodso.simulators import coordinator, grid  # noqa: E402

from tsodso import runner  # noqa: E402


def cpu(schemes: list[str], steps: int, runs: int) -> None:
    clock = types.SimpleNamespace(perf_counter=time.process_time)
    runner.time = grid._time = coordinator._time = clock
    print(f"default, {steps} steps, CPU ms/step (best of {runs} runs)")
    with tempfile.TemporaryDirectory() as tmp:
        runner.run(load("default", {"run.steps": 2}), "none", Path(tmp) / "warm.h5")  # JIT
        for scheme in schemes:
            rows = []
            for r in range(runs):
                path = Path(tmp) / f"{scheme}{r}.h5"
                runner.run(load("default", {"run.steps": steps}), scheme, path, profile=True)
                with h5py.File(path) as f:
                    t = {k: float(v) for k, v in f["timing"].attrs.items()}
                rows.append(tuple(1e3 * t[k] / steps
                                  for k in ("simulate_s", "powerflow_s", "clearing_s")))
            step, pf, clr = min(rows)
            rest = step - pf - clr
            print(f"{scheme:17s} step {step:6.1f}  power flow {pf:5.1f}  clearing {clr:5.1f}"
                  f"  everything else {rest:5.1f}  ({rest / (pf + clr):.2f} of pf + clearing)")


def calls(schemes: list[str], steps: int) -> None:
    build = runner.build_world
    print(f"default, {steps} steps, function calls per time step")
    with tempfile.TemporaryDirectory() as tmp:
        runner.run(load("default", {"run.steps": 2}), "none", Path(tmp) / "warm.h5")
        for scheme in schemes:
            n: collections.Counter = collections.Counter()

            def count(frame, event, arg, n=n) -> None:
                n[event] += 1

            class Counted:
                """The world, its `run` counted."""

                def __init__(self, world) -> None:
                    self.world = world

                def run(self, *args, **kwargs):
                    sys.setprofile(count)
                    try:
                        return self.world.run(*args, **kwargs)
                    finally:
                        sys.setprofile(None)

                def __getattr__(self, name: str):
                    return getattr(self.world, name)

            runner.build_world = lambda *a, **k: Counted(build(*a, **k))
            try:
                runner.run(load("default", {"run.steps": steps}), scheme,
                           Path(tmp) / f"{scheme}.h5")
            finally:
                runner.build_world = build
            print(f"{scheme:17s} Python {n['call'] / steps:8.0f}  C {n['c_call'] / steps:8.0f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    counting = bool(args) and args[0] == "--calls"
    if counting:
        args = args[1:]
    names = args[0].split(",") if args else ["none", "centralized", "common"]
    n_steps = int(args[1]) if len(args) > 1 else 96
    if counting:
        calls(names, n_steps)
    else:
        cpu(names, n_steps, int(args[2]) if len(args) > 2 else 2)
