"""mosaik's own cost per time step, in figures that a shared machine does not blur.

    python benchmarks/mosaik_cost.py [SCHEMES] [STEPS]     # default: none,common 48

Prints per scheme the simulator steps per time step (per simulator), the whole step and
mosaik's share in wall and in CPU time (mosaik = the run less every simulator's `step` and
`get_data`), and the Python function calls mosaik makes per time step outside the simulators
(counted with `sys.setprofile` in a second run: deterministic, so two versions of the code can
be compared when the machine's load makes the times vary by a factor of two).
"""

from __future__ import annotations

import collections
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.scenarios.load import load  # noqa: E402
from tsodso.simulators import coordinator, grid, providers, recorder  # noqa: E402

from tsodso import runner  # noqa: E402

STEPS: collections.Counter = collections.Counter()
SPENT = {"wall": 0.0, "cpu": 0.0, "run_wall": 0.0, "run_cpu": 0.0, "calls": 0}
INSIDE = [0]  # > 0 while a simulator's method runs


def _wrap(cls, name: str, label) -> None:
    f = getattr(cls, name)

    @functools.wraps(f)
    def timed(self, *args, **kwargs):
        if name == "step":
            STEPS[label(self)] += 1
        t0, c0 = time.perf_counter(), time.process_time()
        INSIDE[0] += 1
        try:
            return f(self, *args, **kwargs)
        finally:
            INSIDE[0] -= 1
            SPENT["wall"] += time.perf_counter() - t0
            SPENT["cpu"] += time.process_time() - c0

    setattr(cls, name, timed)


def _count_call(frame, event, arg) -> None:
    if not INSIDE[0] and event in ("call", "c_call"):
        SPENT["calls"] += 1


def _instrument(count_calls: list[bool]) -> None:
    for cls, label in ((grid.GridSim, lambda s: f"grid {s.level}"),
                       (providers.ProvidersSim, lambda s: "providers"),
                       (coordinator.CoordinatorSim, lambda s: "coordinator"),
                       (recorder.RecorderSim, lambda s: "recorder")):
        _wrap(cls, "step", label)
        if "get_data" in cls.__dict__:
            _wrap(cls, "get_data", label)
    build = runner.build_world

    def build_world(*args, **kwargs):
        world = build(*args, **kwargs)
        run = world.run

        def timed_run(*a, **kw):
            t0, c0 = time.perf_counter(), time.process_time()
            if count_calls[0]:
                sys.setprofile(_count_call)
            try:
                return run(*a, **kw)
            finally:
                sys.setprofile(None)
                SPENT["run_wall"] += time.perf_counter() - t0
                SPENT["run_cpu"] += time.process_time() - c0

        world.run = timed_run
        return world

    runner.build_world = build_world


def main(schemes: list[str], steps: int) -> None:
    count_calls = [False]
    _instrument(count_calls)
    print(f"default, {steps} steps (per time step)")
    for scheme in schemes:
        figures = {}
        for counting in (False, True):
            STEPS.clear()
            SPENT.update(dict.fromkeys(SPENT, 0))
            count_calls[0] = counting
            with tempfile.TemporaryDirectory() as tmp:
                runner.run(load("default", {"run.steps": steps}), scheme, Path(tmp) / "m.h5")
            figures[counting] = dict(SPENT)
            if not counting:
                sim_steps = dict(STEPS)
        timed = figures[False]

        def ms(s: float) -> float:
            return 1e3 * s / steps

        total = sum(sim_steps.values()) / steps
        each = ", ".join(f"{k} {v / steps:.2f}" for k, v in sorted(sim_steps.items()))
        print(f"== {scheme}: {total:.2f} simulator steps ({each})")
        print(f"   step {ms(timed['run_wall']):.1f} ms wall, {ms(timed['run_cpu']):.1f} ms CPU; "
              f"mosaik {ms(timed['run_wall'] - timed['wall']):.1f} ms wall, "
              f"{ms(timed['run_cpu'] - timed['cpu']):.1f} ms CPU, "
              f"{figures[True]['calls'] / steps:,.0f} calls")


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else ["none", "common"],
         int(sys.argv[2]) if len(sys.argv) > 2 else 48)
