"""Set-up time and peak memory of the market schemes on `default` (issue 11, items 4 and 5:
set-up <= 3 s and peak RSS <= 1 GB per run), against the scheme without markets.

    python benchmarks/bench_market_setup.py [SCHEMES] [STEPS] [REPEAT]
    # default: common,integrated (and none, the reference), 2 steps, 3 runs each

Each scheme runs in its own fresh process (`run(load("default", {"run.steps": STEPS}),
scheme, path)`, warm SimBench cache, one BLAS thread), so that its peak RSS (``ru_maxrss``)
is its own; each scheme runs REPEAT times and the smallest figures are kept (on the shared
machine the same build took 0.3-1.1 s between runs). Printed per scheme: the set-up
(`prepare`: world, scheme and its markets built) and the markets' build alone (every
`FlexMarket`, attached to HiGHS), each as wall and CPU seconds, the peak RSS, and the ratios
of set-up wall time and peak RSS to the targets (<= 1: met).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP_TARGET_S = 3.0
PEAK_TARGET_MIB = 1024.0

CHILD = """
import json, resource, tempfile, time
from pathlib import Path
from tsodso import runner
from tsodso.coordination import market
from tsodso.scenarios.load import load
spent = {"setup": [0.0, 0.0], "markets": [0.0, 0.0]}

def timed(fn, key):
    def wrapper(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        out = fn(*a, **k)
        spent[key][0] += time.perf_counter() - w
        spent[key][1] += time.process_time() - c
        return out
    return wrapper

runner.prepare = timed(runner.prepare, "setup")
market.FlexMarket.__init__ = timed(market.FlexMarket.__init__, "markets")
with tempfile.TemporaryDirectory() as tmp:
    runner.run(load("default", {"run.steps": %d}), %r, Path(tmp) / "b.h5")
print(json.dumps({"setup_s": spent["setup"][0], "setup_cpu_s": spent["setup"][1],
                  "markets_s": spent["markets"][0], "markets_cpu_s": spent["markets"][1],
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(scheme: str, steps: int) -> dict[str, float]:
    """Set-up (s) and peak RSS (MiB) of one scheme's run in a fresh process."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD % (steps, scheme)], capture_output=True,
                         text=True, cwd=ROOT, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(schemes: list[str], steps: int, repeat: int) -> None:
    names = ["none"] + [s for s in schemes if s != "none"]
    res = {}
    for s in names:
        runs = [child(s, steps) for _ in range(repeat)]
        res[s] = {k: min(r[k] for r in runs) for k in runs[0]}
    print(f"default, {steps} steps, one fresh process per run, smallest of {repeat} runs "
          "(wall / CPU seconds)")
    print(f"{'scheme':12s} {'set-up':>13s} {'markets':>13s} {'peak MiB':>9s} "
          f"{'set-up/3s':>10s} {'peak/1GiB':>10s}")
    for s in names:
        r = res[s]
        print(f"{s:12s} {r['setup_s']:6.2f} {r['setup_cpu_s']:6.2f} {r['markets_s']:6.2f} "
              f"{r['markets_cpu_s']:6.2f} {r['peak_mib']:9.0f} "
              f"{r['setup_s'] / SETUP_TARGET_S:10.2f} {r['peak_mib'] / PEAK_TARGET_MIB:10.2f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0].split(",") if a else ["common", "integrated"], int(a[1]) if len(a) > 1 else 2,
         int(a[2]) if len(a) > 2 else 3)
