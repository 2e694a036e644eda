"""Ranking of the schemes under each value of unserved quantities x0.1 and x10 (re-run, not
re-priced: the markets optimise with the changed values).

    python benchmarks/penalty_sensitivity.py [SCENARIO] [STEPS] [START]   # default: default 96
    python benchmarks/penalty_sensitivity.py default 24 2016-05-30T10:00:00

Prints, per case, the schemes ranked by social cost, with the resource cost and the value of
what stays unserved, and marks the ranking changes against the base values. Each case is one
`compare` of every scheme on the same scenario and seed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.coordination.schemes import scheme_names  # noqa: E402
from tsodso.scenarios.load import ScenarioError, load  # noqa: E402

from tsodso.comparison import compare  # noqa: E402

KNOBS = ("imbalance_eur_per_mwh", "overload_eur_per_mwh", "voltage_eur_per_pu_h")
FACTORS = (0.1, 10.0)


def cases(base) -> list[tuple[str, dict]]:
    """The base values, then each value x0.1 and x10. Where that would value imbalance at or
    below overloads (invalid: balance is never traded for thermal loading), the other of the
    two is moved along to keep imbalance at 1.5 x overload, and the label says so."""
    pen = base.penalties
    out = [("base", {})]
    for knob in KNOBS:
        for f in FACTORS:
            values = {k: getattr(pen, k) for k in KNOBS}
            values[knob] *= f
            label = f"{knob} x{f:g}"
            if values["imbalance_eur_per_mwh"] <= values["overload_eur_per_mwh"]:
                if knob == "imbalance_eur_per_mwh":
                    values["overload_eur_per_mwh"] = values["imbalance_eur_per_mwh"] / 1.5
                    label += " (overload lowered with it to 1/1.5 of imbalance)"
                else:
                    values["imbalance_eur_per_mwh"] = values["overload_eur_per_mwh"] * 1.5
                    label += " (imbalance raised with it to 1.5 x overload)"
            out.append((label, {f"penalties.{k}": v for k, v in values.items()}))
    return out


def main(name: str = "default", steps: int = 96, start: str | None = None) -> None:
    over = {"run.steps": steps}
    if start:
        over["run.start"] = start
    base = load(name, over)
    print(f"{name}, {steps} steps from {base.run.start:%Y-%m-%d %H:%M}, seed {base.run.seed}; "
          f"values: imbalance {base.penalties.imbalance_eur_per_mwh:g} EUR/MWh, overload "
          f"{base.penalties.overload_eur_per_mwh:g} EUR/MWh, voltage "
          f"{base.penalties.voltage_eur_per_pu_h:g} EUR/(pu h)")
    base_order = None
    for label, extra in cases(base):
        try:
            sc = load(name, {**over, **extra})
        except ScenarioError as exc:  # e.g. imbalance x0.1 below overload: not a valid case
            print(f"\n{label}: skipped ({exc})")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rows = compare(sc, list(scheme_names()), Path(tmp))
        rows.sort(key=lambda r: r["social_cost_eur"])
        order = [r["scheme"] for r in rows]
        base_order = base_order or order
        moved = "" if order == base_order else "   <- ranking differs from base"
        print(f"\n{label}{moved}")
        print(f"  {'rank':>4} {'scheme':18s} {'social EUR':>14} {'flexibility EUR':>16} "
              f"{'unserved EUR':>14}")
        for i, r in enumerate(rows, 1):
            print(f"  {i:>4} {r['scheme']:18s} {r['social_cost_eur']:>14,.0f} "
                  f"{r['resource_cost_eur']:>16,.0f} {r['unserved_value_eur']:>14,.0f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "default", int(args[1]) if len(args) > 1 else 96,
         args[2] if len(args) > 2 else None)
