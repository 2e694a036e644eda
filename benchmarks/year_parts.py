"""Where a `tsodso compare` run's time went, part by part, from its result files alone, and
what each part costs the whole comparison on a number of processes.

    python benchmarks/year_parts.py DIR [DIR ...] [--workers 2] [--target-min 30] [--steps N]

Reads the `/timing` attributes that `tsodso run --profile` and every `compare` run write
(`powerflow_s`, `clearing_s`, `simulate_s`: the run's own clocks) and the step count of each
`<scheme>.h5` in the folders given (a later folder's file of the same scheme replaces an
earlier one's). Prints per
scheme ms per step of the power flow, the clearing and everything else, and then for each
part the minutes the schemes together spend in it divided by WORKERS (what that part alone
costs the comparison when the processes are kept busy), against the target. With `--steps N`
each run's ms per step is counted for N steps (e.g. 35136: a shorter run extrapolated to a
year; its weather is then the year's, which a short window's need not be).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py

PARTS = ("power flow", "clearing", "everything else")


def read(folders: list[Path]) -> dict[str, dict[str, float]]:
    """Per scheme: steps and seconds per part, from the last folder holding its file."""
    runs: dict[str, dict[str, float]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.h5")):
            with h5py.File(path, "r") as f:
                if "timing" not in f or "time" not in f:
                    continue
                t = f["timing"].attrs
                if not all(k in t for k in ("powerflow_s", "clearing_s", "simulate_s")):
                    continue  # a run without timing (`tsodso run` without --profile)
                steps = len(f["time"])
                pf, cl, sim = (float(t[k]) for k in ("powerflow_s", "clearing_s", "simulate_s"))
            runs[path.stem] = {"steps": steps, "power flow": pf, "clearing": cl,
                               "everything else": sim - pf - cl}
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target-min", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=None,
                    help="count every run's ms per step for this many steps")
    args = ap.parse_args()
    runs = read(args.folders)
    if not runs:
        raise SystemExit(f"no run files with /timing in {', '.join(map(str, args.folders))}")
    print(f"{'scheme':18s} {'steps':>6s} " + " ".join(f"{p:>16s}" for p in PARTS)
          + "  (ms per step)")
    for scheme, r in sorted(runs.items()):
        print(f"{scheme:18s} {r['steps']:6d} "
              + " ".join(f"{1000 * r[p] / r['steps']:16.1f}" for p in PARTS))
    scale = {s: (args.steps / r["steps"] if args.steps else 1.0) for s, r in runs.items()}
    over = f", each run counted for {args.steps} steps" if args.steps else ""
    print(f"\nminutes of the comparison on {args.workers} busy processes{over} "
          f"(target {args.target_min:g} min):")
    total = 0.0
    for p in PARTS:
        minutes = sum(r[p] * scale[s] for s, r in runs.items()) / 60 / args.workers
        total += minutes
        print(f"  {p:16s} {minutes:7.1f} min  ({minutes / args.target_min:.2f} of the target)")
    print(f"  {'all parts':16s} {total:7.1f} min  ({total / args.target_min:.2f} of the target)")


if __name__ == "__main__":
    main()
