"""Time `tsodso report`: build the HTML report of a compare directory and print the time.

    tsodso compare default --steps 96 --out /tmp/cmp_default_full    # a few minutes
    python benchmarks/bench_report.py /tmp/cmp_default_full [--repeat 3] [--out FILE.html]

Prints the time to import the report module, the first (cold) build, which includes importing
matplotlib, and the fastest of the repeated builds. Target for a 96-step `default` comparison:
cold import + build under 10 s. Absolute times on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="compare directory (or one results file)")
    ap.add_argument("--repeat", type=int, default=3, help="builds after the first one")
    ap.add_argument("--out", type=Path, default=None, help="report file (default: temporary)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    from tsodso.results.report import build_report

    t_import = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report.html"
        t1 = time.perf_counter()
        build_report(args.source, out)
        t_cold = time.perf_counter() - t1
        warm = []
        for _ in range(args.repeat):
            t2 = time.perf_counter()
            build_report(args.source, out)
            warm.append(time.perf_counter() - t2)
        size = out.stat().st_size
    files = [args.source] if args.source.is_file() else sorted(args.source.glob("*.h5"))
    print(f"source: {args.source} ({len(files)} results files, "
          f"{sum(f.stat().st_size for f in files) / 1e6:,.1f} MB)")
    print(f"report: {size / 1e3:,.0f} kB")
    print(f"import results.report: {t_import:6.2f} s")
    print(f"first build (cold):    {t_cold:6.2f} s")
    if warm:
        print(f"fastest of {len(warm)} builds:   {min(warm):6.2f} s")
    total = t_import + t_cold
    print(f"import + first build:  {total:6.2f} s  ({'under' if total < 10 else 'OVER'} the "
          f"10 s target)")


if __name__ == "__main__":
    main()
