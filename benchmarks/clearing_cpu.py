"""CPU time of the clearing per step, split into HiGHS and the work around it, measured on
this thread (`time.thread_time`), so that other processes on a shared machine move it far less
than wall-clock time.

    python benchmarks/clearing_cpu.py [SCHEMES] [STEPS] [TREE]
    # default: local,shared_balancing,common 48, this checkout

TREE: another checkout of tsodso to measure with this interpreter's packages (e.g. main's
tree, run with main's venv, for a before/after pair). Prints per scheme ms/step of the
clearing (the coordinator's relinearise + clear), of HiGHS's runs in it, of the rest, of the
relinearisation in it (`Scheme.relinearise`: the D grids' refresh and their new D rows in the
markets), and of the coordinator's `_record` and the writer's `append`.
"""

from __future__ import annotations

import collections
import functools
import sys
import tempfile
import time
from pathlib import Path

TREE = Path(sys.argv[3]).resolve() if len(sys.argv) > 3 else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TREE))

from tsodso.coordination import lp  # noqa: E402
from tsodso.coordination.schemes import base  # noqa: E402
from tsodso.results import writer  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402
from tsodso.simulators import coordinator  # noqa: E402

from tsodso.runner import run  # noqa: E402

T: collections.Counter = collections.Counter()  # thread CPU seconds per key
N: collections.Counter = collections.Counter()  # calls per key


def _wrap(owner: type, name: str, key: str) -> None:
    """Time `owner.name` on this thread under `key` (and count its calls)."""
    f = getattr(owner, name)

    @functools.wraps(f)
    def timed(*args, **kwargs):
        t0 = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            T[key] += time.thread_time() - t0
            N[key] += 1

    setattr(owner, name, timed)


def main() -> None:
    schemes = (sys.argv[1] if len(sys.argv) > 1 else "local,shared_balancing,common").split(",")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    _wrap(coordinator.CoordinatorSim, "_clear", "clear")
    _wrap(coordinator.CoordinatorSim, "_record", "record")
    _wrap(writer.ResultsWriter, "append", "writer")
    _wrap(lp.MarketLP, "_run", "highs")
    _wrap(base.Scheme, "relinearise", "relinearise")
    print(f"default, {steps} steps, CPU ms/step ({TREE})")
    for scheme in schemes:
        T.clear()
        with tempfile.TemporaryDirectory() as tmp:
            run(load("default", {"run.steps": steps}), scheme, Path(tmp) / "x.h5")
        ms = {k: 1e3 * v / steps for k, v in T.items()}
        print(f"{scheme:18s} clearing {ms['clear']:6.1f} (HiGHS {ms['highs']:5.1f}, around it "
              f"{ms['clear'] - ms['highs']:5.1f}; relinearise {ms['relinearise']:5.1f}), "
              f"_record {ms['record']:4.1f}, "
              f"writer.append {ms['writer']:4.1f}", flush=True)


if __name__ == "__main__":
    main()
