"""Set-up time and peak memory of the market schemes on `default` (issue 11, items 4 and 5:
set-up <= 3 s and peak RSS <= 1 GB per run), against the scheme without markets.

    python benchmarks/bench_market_setup.py [SCHEMES] [STEPS]
    # default: none,common,integrated and 2 steps

Each scheme runs in its own fresh process (`run(load("default", {"run.steps": STEPS}),
scheme, path, profile=True)`, warm SimBench cache), so that its peak RSS (``ru_maxrss``) is
its own; set-up is the run's ``setup_s`` (world and scheme built, markets attached to HiGHS).
Printed per scheme: set-up, what the scheme adds to `none`'s set-up (its markets), peak RSS,
and the ratios to the targets (<= 1: met).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP_TARGET_S = 3.0
PEAK_TARGET_MIB = 1024.0

CHILD = """
import json, resource, sys, tempfile
from pathlib import Path
import h5py
from tsodso.scenarios.load import load
from tsodso.runner import run
with tempfile.TemporaryDirectory() as tmp:
    out = Path(tmp) / "b.h5"
    run(load("default", {"run.steps": %d}), %r, out, profile=True)
    with h5py.File(out) as f:
        t = {k: float(v) for k, v in f["timing"].attrs.items()}
print(json.dumps({"setup_s": t["setup_s"],
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(scheme: str, steps: int) -> dict[str, float]:
    """Set-up (s) and peak RSS (MiB) of one scheme's run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD % (steps, scheme)], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(schemes: list[str], steps: int) -> None:
    names = ["none"] + [s for s in schemes if s != "none"]
    res = {s: child(s, steps) for s in names}
    base = res["none"]["setup_s"]
    print(f"default, {steps} steps, one fresh process per scheme")
    print(f"{'scheme':12s} {'set-up s':>9s} {'markets s':>10s} {'peak MiB':>9s} "
          f"{'set-up/3s':>10s} {'peak/1GiB':>10s}")
    for s in names:
        r = res[s]
        print(f"{s:12s} {r['setup_s']:9.2f} {r['setup_s'] - base:10.2f} {r['peak_mib']:9.0f} "
              f"{r['setup_s'] / SETUP_TARGET_S:10.2f} {r['peak_mib'] / PEAK_TARGET_MIB:10.2f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0].split(",") if a else ["common", "integrated"], int(a[1]) if len(a) > 1 else 2)
