"""Row screening of the market LP: the same run with HiGHS holding only the rows that can bind
(the default) and with every row (the full LP, as a reference), in one command.

    python benchmarks/bench_screening.py [SCENARIO] [STEPS] [SCHEMES]
    # default: default 96 common; SCHEMES: comma-separated, e.g. common,integrated

Prints per market LP: the rows and nonzeros of the LP and of HiGHS's model at the end of the
run, warm-solve ms (mean over the run's HiGHS runs), the mean simplex iterations, how often
HiGHS was given a new model, and the whole clearing's ms per step; then the ratio screened /
full. The activations of both runs are compared (max |difference| in MW).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.coordination.lp import MarketLP  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402

from tsodso.runner import run  # noqa: E402


def _measure(sc, scheme: str, path: Path, screen: bool) -> tuple[dict, float, np.ndarray]:
    """Per LP: (rows, nonzeros of the LP, rows and nonzeros in HiGHS, solve s, iterations,
    rebuilds); the clearing's s per step; the activated MW."""
    stats: dict[int, dict] = {}
    orig_run, orig_screen = MarketLP._run, MarketLP.screen

    def timed(self):
        t0 = time.perf_counter()
        status = orig_run(self)
        s = stats.setdefault(id(self), dict(name=self.name, t=[], it=[]))
        s["t"].append(time.perf_counter() - t0)
        s["it"].append(self.highs.getInfo().simplex_iteration_count)
        s.update(highs=(self.highs.getNumRow(), self.highs.getNumNz()),
                 full=(len(self._pos), self._ax.nnz + self._ao.nnz), rebuilds=self.n_rebuilds)
        return status

    MarketLP._run, MarketLP.screen = timed, screen
    try:
        run(sc, scheme, path, profile=True)
    finally:
        MarketLP._run, MarketLP.screen = orig_run, orig_screen
    with h5py.File(path) as f:
        clearing = float(f["timing"].attrs["clearing_s"]) / sc.run.steps
        mw = f["activations/mw"][:]
    return stats, clearing, mw


def main(name: str, steps: int, schemes: list[str]) -> None:
    sc = load(name, {"run.steps": steps})
    print(f"{name}, {steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in schemes:
            res = {scr: _measure(sc, scheme, Path(tmp) / f"{scheme}-{scr}.h5", scr)
                   for scr in (True, False)}
            print(f"{scheme}: clearing {1e3 * res[True][1]:.1f} ms/step screened, "
                  f"{1e3 * res[False][1]:.1f} full, ratio {res[True][1] / res[False][1]:.2f}")
            a, b = res[True][2], res[False][2]
            diff = float(np.max(np.abs(a - b), initial=0.0)) if len(a) == len(b) else np.inf
            print(f"  activations: {len(a)} vs {len(b)} rows, max |diff| {diff:.2e} MW")
            for (_, s), (_, f) in zip(res[True][0].items(), res[False][0].items(),
                                      strict=True):
                ts, tf = 1e3 * np.mean(s["t"]), 1e3 * np.mean(f["t"])
                print(f"  {s['name']:12s} LP {s['full'][0]} rows {s['full'][1]} nz; "
                      f"HiGHS {s['highs'][0]} rows {s['highs'][1]} nz; "
                      f"solve {ts:.1f} ms (full {tf:.1f}, ratio {ts / tf:.2f}); "
                      f"iterations {np.mean(s['it']):.0f} (full {np.mean(f['it']):.0f}); "
                      f"new models {s['rebuilds']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "default",
         int(sys.argv[2]) if len(sys.argv) > 2 else 96,
         sys.argv[3].split(",") if len(sys.argv) > 3 else ["common"])
