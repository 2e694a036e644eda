"""Benchmarks of the co-simulation backbone; prints figures and ratios.

    python benchmarks/bench_backbone.py flat      # tiny/none: per-step cost at 200 vs 2,000 steps
    python benchmarks/bench_backbone.py memory    # tiny/none: peak memory, 96 vs 960 steps
    python benchmarks/bench_backbone.py memory default 96 2976   # default/none, a day vs a month
    python benchmarks/bench_backbone.py default   # none/centralized vs pandapower time series
    python benchmarks/bench_backbone.py tiny      # the same on tiny

Absolute times on shared machines are noisy; compare the ratios, measured in one command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.scenarios.load import load  # noqa: E402

from tsodso.runner import run  # noqa: E402


def _run(name: str, scheme: str, steps: int) -> dict[str, float]:
    sc = load(name, {"run.steps": steps})
    with tempfile.TemporaryDirectory() as tmp:
        run(sc, scheme, Path(tmp) / "b.h5", profile=True)
        import h5py

        with h5py.File(Path(tmp) / "b.h5", "r") as f:
            return {k: float(v) for k, v in f["timing"].attrs.items()}


def flat() -> None:
    short, long = 200, 2000
    a = _run("tiny", "none", short)
    b = _run("tiny", "none", long)
    sps_a, sps_b = short / a["simulate_s"], long / b["simulate_s"]
    print(f"tiny/none {short:5d} steps: {sps_a:7.1f} steps/s ({1e3 / sps_a:.2f} ms/step)")
    print(f"tiny/none {long:5d} steps: {sps_b:7.1f} steps/s ({1e3 / sps_b:.2f} ms/step)")
    print(f"ratio steps/s {long}/{short}: {sps_b / sps_a:.3f} (target >= 0.80)")


def _child_peak(steps: int, name: str = "tiny", scheme: str = "none") -> float:
    """Peak RSS (MiB) of a fresh process that runs `steps` of `scheme` on `name`."""
    code = ("import resource,sys;sys.path.insert(0,'.');"
            "from benchmarks.bench_backbone import _run;"
            f"_run({name!r},{scheme!r},{steps});"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    return float(out.stdout.strip().splitlines()[-1])


def memory(name: str = "tiny", short: int = 96, long: int = 960) -> None:
    small, large = _child_peak(short, name), _child_peak(long, name)
    print(f"{name}/none {short:5d} steps: peak RSS {small:8.1f} MiB")
    print(f"{name}/none {long:5d} steps: peak RSS {large:8.1f} MiB")
    print(f"ratio {long}/{short}: {large / small:.3f} (target <= 1.10; "
          f"peak <= 1024 MiB: {'yes' if max(small, large) <= 1024 else 'no'})")


def reference_timeseries(name: str, steps: int) -> float:
    """pandapower's own time series power flow of the unsplit net; seconds per step."""
    import pandapower.control as control
    import pandapower.timeseries as ts
    import pandas as pd
    from tsodso.scenarios.world import load_grid, profile_rows, quiet_libraries

    quiet_libraries()
    sc = load(name, {"run.steps": steps})
    net, profiles = load_grid(sc)
    rows = sc.run.first_row + np.arange(steps) * sc.run.stride
    for (table, col), df in profiles.items():
        if df.shape[1] == 0:
            continue
        data = ts.DFData(pd.DataFrame(profile_rows(df, rows), columns=df.columns))
        control.ConstControl(net, element=table, variable=col, element_index=df.columns,
                             data_source=data, profile_name=df.columns)
    out = ts.OutputWriter(net, output_path=None)
    out.log_variable("res_bus", "vm_pu")
    out.log_variable("res_line", "loading_percent")
    t0 = time.perf_counter()
    ts.run_timeseries(net, time_steps=range(steps), verbose=False, numba=False)
    return (time.perf_counter() - t0) / steps


def versus_reference(name: str, steps: int) -> None:
    ref = reference_timeseries(name, steps)
    print(f"{name}: pandapower run_timeseries of the unsplit net: {1e3 * ref:8.1f} ms/step")
    for scheme in ("none", "centralized"):
        t = _run(name, scheme, steps)
        per = t["simulate_s"] / steps
        pf, clr = 1e3 * t["powerflow_s"] / steps, 1e3 * t["clearing_s"] / steps
        print(f"{name}/{scheme:11s}: {1e3 * per:8.1f} ms/step  (power flow {pf:6.1f}, "
              f"clearing {clr:6.1f} ms/step; set-up {t['setup_s']:.1f} s)  "
              f"ratio to reference {per / ref:.2f}")
    print(json.dumps({"reference_ms_per_step": 1e3 * ref}))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "flat"
    if what == "flat":
        flat()
    elif what == "memory":
        args = sys.argv[2:]
        memory(args[0] if args else "tiny", *(int(a) for a in args[1:3]))
    elif what in ("default", "tiny"):
        versus_reference(what, int(sys.argv[2]) if len(sys.argv) > 2 else 96)
    else:
        raise SystemExit(__doc__)
