"""Where the clearing's CPU time goes, part by part, for one scheme (thread CPU time, as in
`clearing_cpu.py`, so that other processes on a shared machine move it far less).

    python benchmarks/clearing_parts.py [SCHEME] [STEPS] [TREE]
    # default: integrated 96, this checkout

TREE: another checkout of tsodso to measure with this interpreter's packages (e.g. main's
tree, run with main's venv, for a before/after pair). Prints ms/step (and calls) of the
coordinator's clearing and of the parts it is made of, nested as indented: the D grids'
refresh (`relinearise`: the D model, the markets' new D rows, `MarketLP.set_coefs`), the
scheme's `clear`, each market's `FlexMarket.clear`, and in `MarketLP.solve` the screening
(`_screen`: `_rebuild`, `_add_rows`, `Reach.bounds`), HiGHS's runs, the check of the left-out
rows after the solve (`_violated`) and of the solution (`checked`). A part's time includes its
own parts; parts called from several places are counted wherever they are called.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

TREE = Path(sys.argv[3]).resolve() if len(sys.argv) > 3 else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TREE))

# the same timer as clearing_cpu.py (a sibling script: its directory is on sys.path)
from clearing_cpu import N, T, _wrap  # noqa: E402
from tsodso.coordination import dgrids, lp, market, reach  # noqa: E402
from tsodso.coordination.schemes.registry import scheme_class  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402
from tsodso.simulators import coordinator  # noqa: E402

from tsodso.runner import run  # noqa: E402


def main() -> None:
    scheme = sys.argv[1] if len(sys.argv) > 1 else "integrated"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 96
    cls = scheme_class(scheme)
    parts = [  # (owner, method, label with its nesting)
        (coordinator.CoordinatorSim, "_clear", "clearing"),
        (cls, "relinearise", "  relinearise (D refresh)"),
        (dgrids.DGridView, "refresh", "    DGridView.refresh"),
        (market.FlexMarket, "update_drows", "    FlexMarket.update_drows"),
        (lp.MarketLP, "set_coefs", "      MarketLP.set_coefs"),
        (cls, "clear", "  scheme.clear"),
        (market.FlexMarket, "clear", "    FlexMarket.clear"),
        (lp.MarketLP, "solve", "      MarketLP.solve"),
        (lp.MarketLP, "_screen", "        _screen"),
        (lp.MarketLP, "_rebuild", "          _rebuild (passModel)"),
        (lp.MarketLP, "_add_rows", "          _add_rows"),
        (reach.Reach, "bounds", "          Reach.bounds"),
        (lp.MarketLP, "_run", "        HiGHS run"),
        (lp.MarketLP, "_violated", "        _violated"),
        (lp.MarketLP, "checked", "        checked"),
        (dgrids.DGridView, "after", "    DGridView.after"),
    ]
    for owner, name, label in parts:
        _wrap(owner, name, label)
    with tempfile.TemporaryDirectory() as tmp:
        run(load("default", {"run.steps": steps}), scheme, Path(tmp) / "x.h5")
    print(f"default, {steps} steps, {scheme}, CPU ms/step ({TREE})")
    for _, _, label in parts:
        print(f"{label:34s} {1e3 * T[label] / steps:7.2f}  ({N[label]} calls)")


if __name__ == "__main__":
    main()
