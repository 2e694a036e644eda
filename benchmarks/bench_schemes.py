"""Per-scheme cost of the clearing against the grids' power flows.

    python benchmarks/bench_schemes.py [SCENARIO] [STEPS] [SCHEMES]
    # default: default 96, every scheme; SCHEMES: comma-separated subset, e.g. common,local

Runs every scheme on the same scenario one after the other in this process and prints, per
scheme, ms per step spent in power flows and in market clearing, their ratio (target: clearing
cheaper than the power flows), and the whole per-step cost.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.coordination.schemes import scheme_names  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402

from tsodso.runner import run  # noqa: E402


def main(name: str, steps: int, schemes: list[str] | None = None) -> None:
    sc = load(name, {"run.steps": steps})
    print(f"{name}, {steps} steps of {sc.run.step_s} s")
    print(f"{'scheme':17s} {'power flow':>11s} {'clearing':>9s} {'ratio':>6s} {'step':>8s}"
          f" {'set-up':>7s}   (ms/step; set-up s)")
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in schemes or scheme_names():
            path = Path(tmp) / f"{scheme}.h5"
            run(sc, scheme, path, profile=True)
            with h5py.File(path) as f:
                t = {k: float(v) for k, v in f["timing"].attrs.items()}
            pf, clr = 1e3 * t["powerflow_s"] / steps, 1e3 * t["clearing_s"] / steps
            per = 1e3 * t["simulate_s"] / steps
            ratio = clr / pf if pf else float("nan")
            print(f"{scheme:17s} {pf:11.1f} {clr:9.1f} {ratio:6.2f} {per:8.1f}"
                  f" {t['setup_s']:7.1f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "default",
         int(sys.argv[2]) if len(sys.argv) > 2 else 96,
         sys.argv[3].split(",") if len(sys.argv) > 3 else None)
