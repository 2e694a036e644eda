"""Where "everything else" of a step goes, without a profiler: timers around each simulator's
step and the main functions under it.

    python benchmarks/step_parts.py [SCHEMES] [STEPS]    # default: none,common,local 96

Prints per scheme ms/step of the whole step, the power flow, the clearing and everything else
(and its ratio to power flow + clearing, issue 11 item 3), then mosaik's own share (the
simulated time outside every simulator's step and get_data), the D and T grids' work outside
the solver, the coordinator's outside the clearing, and the timed functions (nested: a
function's time includes those it calls; garbage collection counted during the run only).
"""

from __future__ import annotations

import collections
import functools
import gc
import sys
import tempfile
import time
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.coordination import need  # noqa: E402
from tsodso.coordination.schemes import base as scheme_base  # noqa: E402
from tsodso.results import writer  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402
from tsodso.simulators import coordinator, flexibility, grid, providers, recorder  # noqa: E402

from tsodso.runner import run  # noqa: E402

T: collections.Counter = collections.Counter()
RUNNING = {"on": False}


def _wrap(owner, name: str, key: str) -> None:
    f = getattr(owner, name)

    @functools.wraps(f)
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            T[key] += time.perf_counter() - t0

    setattr(owner, name, timed)


def _instrument() -> None:
    step = providers.ProvidersSim.step

    def first(self, *args, **kwargs):  # the run has started: count garbage collection
        RUNNING["on"] = True
        return step(self, *args, **kwargs)

    providers.ProvidersSim.step = first
    for owner, name, key in (
            (providers.ProvidersSim, "step", "providers.step"),
            (coordinator.CoordinatorSim, "step", "coordinator.step"),
            (grid.GridSim, "step", "grid.step"),
            (recorder.RecorderSim, "step", "recorder.step"),
            (providers.ProvidersSim, "get_data", "get_data"),
            (coordinator.CoordinatorSim, "get_data", "get_data"),
            (grid.GridSim, "get_data", "get_data"),
            (coordinator.CoordinatorSim, "_record", "coordinator._record"),
            (coordinator.CoordinatorSim, "_view", "coordinator._view"),
            (coordinator, "detect", "conflicts.detect"),
            (need.Assessor, "__call__", "need.assess"),
            (flexibility.Portfolio, "offer", "portfolio.offer"),
            (flexibility.Portfolio, "activate", "portfolio.activate"),
            (flexibility.Portfolio, "neutral", "portfolio.neutral"),
            (scheme_base, "settle", "settle (in the clearing)"),
            (writer.ResultsWriter, "_validate", "writer.validate"),
            (writer.ResultsWriter, "_write_block", "writer.write_block")):
        _wrap(owner, name, key)
    started = {"t": 0.0}

    def collected(phase: str, info: dict) -> None:
        if not RUNNING["on"]:
            return
        if phase == "start":
            started["t"] = time.perf_counter()
        else:
            T[f"gc gen{info['generation']}"] += time.perf_counter() - started["t"]

    gc.callbacks.append(collected)


def main(schemes: list[str], steps: int) -> None:
    _instrument()
    print(f"default, {steps} steps (ms/step)")
    for scheme in schemes:
        T.clear()
        RUNNING["on"] = False
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "p.h5"
            run(load("default", {"run.steps": steps}), scheme, out, profile=True)
            with h5py.File(out) as f:
                t = {k: float(v) for k, v in f["timing"].attrs.items()}

        def ms(s: float) -> float:
            return 1e3 * s / steps

        pf, clr, sim = t["powerflow_s"], t["clearing_s"], t["simulate_s"]
        rest = sim - pf - clr
        print(f"== {scheme}: step {ms(sim):.1f}, power flow {ms(pf):.1f}, clearing {ms(clr):.1f},"
              f" everything else {ms(rest):.1f} ({rest / (pf + clr):.2f} of power flow + "
              "clearing)")
        sims = sum(T[k] for k in ("providers.step", "coordinator.step", "grid.step",
                                  "recorder.step", "get_data"))
        print(f"   mosaik {ms(sim - sims):.1f}; grids outside the solver "
              f"{ms(T['grid.step'] - pf):.1f}; coordinator outside the clearing "
              f"{ms(T['coordinator.step'] - clr):.1f}")
        for key, value in sorted(T.items(), key=lambda kv: -kv[1]):
            if key not in ("grid.step", "coordinator.step"):
                print(f"   {key:28s} {ms(value):7.2f}")


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else ["none", "common", "local"],
         int(sys.argv[2]) if len(sys.argv) > 2 else 96)
