"""Set-up time and peak memory of a `default` run with the SimBench cache; prints figures and
the ratio warm / cold.

    python benchmarks/bench_setup.py

Each figure comes from its own child process with an empty (cold) or filled (warm) cache
folder, `TSODSO_CACHE_DIR` set to a temporary folder: cold reads SimBench and converts it into
the cache, warm reads the cache. Set-up is `prepare(load("default"), "none")`; imports are
timed apart. Peak memory is `ru_maxrss` of a child process that runs 96 steps of `none`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import json, resource, time
t0 = time.perf_counter()
from tsodso.scenarios.load import load
from tsodso.scenarios.world import prepare, quiet_libraries
quiet_libraries()
t1 = time.perf_counter()
prepare(load("default"), "none")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "setup_s": t2 - t1,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

RUN = """
import json, resource, sys, tempfile, time
from pathlib import Path
from tsodso.scenarios.load import load
from tsodso.runner import run
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    run(load("default", {"run.steps": %d}), "none", Path(tmp) / "b.h5")
    t1 = time.perf_counter()
print(json.dumps({"run_s": t1 - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, cache: str) -> dict[str, float]:
    env = {**os.environ, "TSODSO_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(steps: int = 96) -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold = _child(SETUP, cache)
        warm = _child(SETUP, cache)
        runs = _child(RUN % steps, cache)
    for name, r in (("cold (empty cache)", cold), ("warm (second process)", warm)):
        print(f"set-up {name:22s}: {r['setup_s']:6.2f} s (+ imports {r['import_s']:.2f} s), "
              f"peak RSS {r['peak_mib']:7.1f} MiB")
    print(f"ratio set-up warm / cold: {warm['setup_s'] / cold['setup_s']:.3f} "
          f"(target: warm <= 3 s)")
    print(f"run default/none {steps} steps, warm cache: {runs['run_s']:.1f} s, "
          f"peak RSS {runs['peak_mib']:.1f} MiB (target <= 1024 MiB)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 96)
