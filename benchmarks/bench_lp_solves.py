"""Per market LP of one scheme: HiGHS runs, ms per run, simplex iterations, model size.

    python benchmarks/bench_lp_solves.py [SCHEME] [STEPS] [SCENARIO]
    # default: integrated 96 default

Runs the scheme once and times every HiGHS run of every market (`MarketLP._run`): per market
(its name and the number of its columns), the runs, mean and median ms per run, mean simplex
iterations per run, mean rows HiGHS held and its columns, and ms per step. The iteration
counts do not depend on the machine's load. The script imports the installed `tsodso`, so
the same file measures another checkout when run with that checkout's interpreter.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tsodso.coordination import lp as lp_module
from tsodso.scenarios.load import load

from tsodso.runner import run


def main(scheme: str, steps: int, scenario: str) -> None:
    runs: dict[tuple[str, int], list] = defaultdict(list)
    original = lp_module.MarketLP._run

    def timed(self: lp_module.MarketLP):
        t0 = time.perf_counter()
        status = original(self)
        h = self.highs
        runs[(self.name, self.n_cols, id(self))].append(
            (time.perf_counter() - t0, h.getInfo().simplex_iteration_count, h.getNumRow(),
             h.getNumCol()))
        return status

    lp_module.MarketLP._run = timed
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run(load(scenario, {"run.steps": steps}), scheme, Path(tmp) / "b.h5")
    finally:
        lp_module.MarketLP._run = original
    print(f"{scheme} on {scenario}, {steps} steps")
    print(f"{'market':24s} {'runs':>5s} {'ms/run':>7s} {'median':>7s} {'iters':>7s}"
          f" {'rows':>6s} {'cols':>6s} {'ms/step':>8s}")
    for (name, n_cols, _), v in runs.items():
        a = np.array(v)
        print(f"{name + ' (' + str(n_cols) + ')':24s} {len(a):5d} {1e3 * a[:, 0].mean():7.1f}"
              f" {1e3 * np.median(a[:, 0]):7.1f} {a[:, 1].mean():7.1f} {a[:, 2].mean():6.0f}"
              f" {int(a[:, 3].max()):6d} {1e3 * a[:, 0].sum() / steps:8.1f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "integrated",
         int(sys.argv[2]) if len(sys.argv) > 2 else 96,
         sys.argv[3] if len(sys.argv) > 3 else "default")
