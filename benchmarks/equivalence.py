"""Behaviour check: today's `tsodso compare` against stored reference summaries.

    python benchmarks/equivalence.py                 # tiny (96), default (16), dgrid (24 steps)
    python benchmarks/equivalence.py tiny            # one case
    python benchmarks/equivalence.py default-day     # the whole default day (96 steps, ~2 min)
    python benchmarks/equivalence.py --update        # store today's figures as the reference

A refactor or speed-up must leave every KPI of every scheme equal to the reference to 1e-9
relative (1e-9 absolute near zero). A change that moves a result updates the reference in the
same commit and says in its message why the new result is more correct.
"""

from __future__ import annotations

import csv
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REFERENCE = Path(__file__).with_name("reference")
#: case -> (scenario, steps, further overrides); `dgrid` is the crossover study's midday window
#: (studies/crossover.toml), where equal-price offers make the markets' ties easy to tip
CASES = {"tiny": ("tiny", 96, {}), "default": ("default", 16, {}),
         "default-day": ("default", 96, {}),
         "dgrid": ("dgrid", 24, {"run.start": "2016-07-25T10:00:00", "run.seed": 2})}
QUICK = ("tiny", "default", "dgrid")  # run when no case is named
RTOL = 1e-9


def reference_path(case: str) -> Path:
    name, steps, _ = CASES[case]
    return REFERENCE / f"{name}-{steps}.csv"


def read_summary(path: Path) -> dict[str, dict[str, float]]:
    with path.open() as fh:
        return {row.pop("scheme"): {k: float(v) for k, v in row.items()}
                for row in csv.DictReader(fh)}


def differences(ref: dict, new: dict, rtol: float = RTOL) -> list[str]:
    """Lines naming every scheme/KPI that differs beyond `rtol` (empty when equal)."""
    out = []
    for scheme in sorted(set(ref) | set(new)):
        if scheme not in ref or scheme not in new:
            out.append(f"{scheme}: only in {'reference' if scheme in ref else 'new run'}")
            continue
        for key in sorted(set(ref[scheme]) | set(new[scheme])):
            a, b = ref[scheme].get(key), new[scheme].get(key)
            if a is None or b is None:
                out.append(f"{scheme}.{key}: missing in {'new run' if b is None else 'reference'}")
            elif not math.isclose(a, b, rel_tol=rtol, abs_tol=rtol):
                out.append(f"{scheme}.{key}: reference {a!r}, now {b!r}")
    return out


def run_case(case: str, out_dir: Path) -> Path:
    from tsodso.coordination.schemes import scheme_names
    from tsodso.scenarios.load import load

    from tsodso.comparison import compare

    name, steps, more = CASES[case]
    compare(load(name, {"run.steps": steps, **more}), list(scheme_names()), out_dir)
    return out_dir / "summary.csv"


def main(argv: list[str]) -> int:
    update = "--update" in argv
    cases = [a for a in argv if not a.startswith("--")] or list(QUICK)
    failed = False
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            summary = run_case(case, Path(tmp))
            if update:
                REFERENCE.mkdir(exist_ok=True)
                reference_path(case).write_bytes(summary.read_bytes())
                print(f"{case}: reference updated ({reference_path(case)})")
                continue
            diff = differences(read_summary(reference_path(case)), read_summary(summary))
        n = sum(len(v) for v in read_summary(reference_path(case)).values())
        print(f"{case}: {n} KPI values compared, {len(diff)} differ beyond {RTOL:g} relative")
        for line in diff:
            print(f"  {line}")
        failed |= bool(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
