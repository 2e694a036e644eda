"""How closely the split co-simulation reproduces pandapower's power flow of the unsplit net.

    python benchmarks/coupling_accuracy.py [tiny|simbench] [STEPS] [START]

Runs the co-simulation with zero forecast error and no coordination, then compares every
recorded bus voltage and branch loading with `pandapower.runpp` of the coupled net at the same
step; prints the largest differences (the check of tests/test_coupling.py over more steps).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandapower as pp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsodso.scenarios.world import load_grid, profile_rows, storage_idle  # noqa: E402

from tests.conftest import ZERO_ERRORS, make_scenario  # noqa: E402
from tsodso.runner import run  # noqa: E402


def main(source: str, steps: int, start: str) -> None:
    sc = make_scenario(source=source, steps=steps, extra=ZERO_ERRORS, start=start)
    worst_v = worst_l = 0.0
    moved = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "acc.h5"
        run(sc, "none", path)
        with h5py.File(path) as f:
            names = f["interfaces/name"].asstr()[:]
            for k in range(steps):
                net, profiles = load_grid(sc)
                row = sc.run.first_row + k * sc.run.stride
                for (table, col), df in profiles.items():
                    if df.shape[1]:
                        net[table].loc[df.columns, col] = profile_rows(df, [row])[0]
                net.storage.loc[storage_idle(net), "p_mw"] = 0.0  # as the run schedules them
                by_name = dict(zip(net.trafo.name.astype(str), net.trafo.index, strict=True))
                for name, pos in zip(names, f["interfaces/tap_pos"][k], strict=True):
                    net.trafo.loc[by_name[name], "tap_pos"] = pos  # the DSOs' tap changers
                moved += int(np.any(f["interfaces/tap_pos"][k] != f["interfaces/tap_pos"][0]))
                pp.runpp(net, numba=False)
                vm = dict(zip(net.bus.name.astype(str), net.res_bus.vm_pu, strict=True))
                ld = dict(zip(net.line.name.astype(str), net.res_line.loading_percent,
                              strict=True))
                ld.update(zip(net.trafo.name.astype(str), net.res_trafo.loading_percent,
                              strict=True))
                for g in f["grids"].values():
                    ref_v = [vm[b] for b in g["bus"].asstr()[:]]
                    ref_l = [ld[b] for b in g["branch"].asstr()[:]]
                    worst_v = max(worst_v, float(np.nanmax(np.abs(g["vm_pu"][k] - ref_v))))
                    worst_l = max(worst_l, float(np.nanmax(
                        np.abs(g["branch_loading_percent"][k] - ref_l))))
    print(f"{source}, {steps} steps from {start}: max |dV| {worst_v:.2e} pu, "
          f"max |d loading| {worst_l:.2e} percentage points; {moved} step(s) with taps moved "
          "since the first")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny",
         int(sys.argv[2]) if len(sys.argv) > 2 else 8,
         sys.argv[3] if len(sys.argv) > 3 else "2016-05-30T10:00:00")
