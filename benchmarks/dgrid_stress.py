"""The `dgrid` day at several D stresses: social cost and MV overloads per scheme.

    python benchmarks/dgrid_stress.py 0.0 1.0                    # none, centralized, local, common
    python benchmarks/dgrid_stress.py 0.5 --schemes centralized,common

Runs the day in hourly steps (24 steps; the DSOs' tap changers act every step, as in the
15-minute run) for each
`growth.d_stress` given, and prints per scheme the social cost, the MV branch-steps above the
loading limit and the MV bus-steps outside the band in the AC results, and the unserved D
overload. Shows where the TSO's market alone stops being enough (docs/scenarios.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.results.read import level_violations  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402

from tsodso import results  # noqa: E402
from tsodso.comparison import compare  # noqa: E402


def d_counts(path: Path) -> tuple[int, int]:
    """(MV branch-steps above the loading limit, MV bus-steps outside the band)."""
    volt, over = level_violations(path, "D")
    return over, volt


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("d_stress", nargs="+", type=float)
    ap.add_argument("--schemes", default="none,centralized,local,common")
    args = ap.parse_args(argv)
    schemes = args.schemes.split(",")
    print("d_stress  scheme        social cost EUR  MV branch-steps>100%  MV bus-steps out  "
          "D overload MWh")
    for stress in args.d_stress:
        sc = load("dgrid", {"growth.d_stress": stress, "run.step_s": 3600, "run.steps": 24})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            compare(sc, schemes, out)
            table = results.compare(out)
            for s in schemes:
                over, volt = d_counts(out / f"{s}.h5")
                k = table.loc[s]
                print(f"{stress:8.2f}  {s:12s}  {k['social_cost_eur']:15,.0f}  {over:20d}  "
                      f"{volt:16d}  {k['unserved_overload_d_mwh']:14.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
