"""The split co-simulation reproduces the power flow of the unsplit coupled net."""

from __future__ import annotations

import h5py
import numpy as np
import pandapower as pp
import pytest
from tsodso.scenarios.world import load_grid, profile_rows, storage_idle

from tests.conftest import ZERO_ERRORS, make_scenario
from tsodso.runner import run

VM_TOL_PU = 1e-5
LOADING_TOL_PERCENT = 0.05


def _unsplit(sc, step: int, taps: dict[str, float]):
    """pandapower's own power flow of the coupled net at a step of the scenario, with the
    interface taps where the DSOs' tap changers put them (`taps`: trafo name -> position) and
    idle storage where the run schedules it idle."""
    net, profiles = load_grid(sc)
    row = sc.run.first_row + step * sc.run.stride
    for (table, col), df in profiles.items():
        if df.shape[1]:
            net[table].loc[df.columns, col] = profile_rows(df, [row])[0]
    net.storage.loc[storage_idle(net), "p_mw"] = 0.0
    by_name = dict(zip(net.trafo.name.astype(str), net.trafo.index, strict=True))
    for name, pos in taps.items():
        net.trafo.loc[by_name[name], "tap_pos"] = pos
    pp.runpp(net, numba=False)
    return net


def _compare(sc, path, steps):
    with h5py.File(path, "r") as f:
        names = f["interfaces/name"].asstr()[:]
        for k in steps:
            net = _unsplit(sc, k, dict(zip(names, f["interfaces/tap_pos"][k], strict=True)))
            vm_ref = dict(zip(net.bus.name.astype(str), net.res_bus.vm_pu, strict=True))
            ld_ref = dict(zip(net.line.name.astype(str), net.res_line.loading_percent,
                              strict=True))
            ld_ref.update(zip(net.trafo.name.astype(str), net.res_trafo.loading_percent,
                              strict=True))
            worst_vm = worst_ld = 0.0
            for grid in f["grids"]:
                g = f["grids"][grid]
                buses = g["bus"].asstr()[:]
                vm = g["vm_pu"][k]
                ref = np.array([vm_ref[b] for b in buses])
                worst_vm = max(worst_vm, float(np.nanmax(np.abs(vm - ref))))
                branches = g["branch"].asstr()[:]
                ld = g["branch_loading_percent"][k]
                ref = np.array([ld_ref[b] for b in branches])
                worst_ld = max(worst_ld, float(np.nanmax(np.abs(ld - ref))))
            assert worst_vm < VM_TOL_PU, f"step {k}: voltage differs by {worst_vm} pu"
            assert worst_ld < LOADING_TOL_PERCENT, f"step {k}: loading differs by {worst_ld} %"


def test_tiny_split_matches_unsplit(tmp_h5):
    sc = make_scenario(source="tiny", steps=6, extra=ZERO_ERRORS)
    run(sc, "none", tmp_h5)
    _compare(sc, tmp_h5, range(6))


@pytest.mark.slow
def test_default_split_matches_unsplit(tmp_h5):
    sc = make_scenario(source="simbench", steps=2, extra=ZERO_ERRORS)
    run(sc, "none", tmp_h5)
    _compare(sc, tmp_h5, range(2))
