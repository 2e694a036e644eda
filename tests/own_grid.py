"""A small own grid for tests and the docs: one 110 kV grid with an ext_grid and two 20 kV
feeders through two transformers, with loads and sgens, saved with `pandapower.to_json`, and
a profile CSV of one column per element and quantity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd

PROFILE_ROWS = 96 * 2  # two days of quarter hours


def build_net():
    """110 kV ring of three buses with an ext_grid, a load and a wind farm; two 110/20 kV
    transformers, each feeding a 20 kV feeder of three buses with loads and PV."""
    net = pp.create_empty_network()
    hv = [pp.create_bus(net, 110.0, name=f"HV{i}") for i in range(3)]
    pp.create_ext_grid(net, hv[0], vm_pu=1.02)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        pp.create_line(net, hv[a], hv[b], 20.0, "149-AL1/24-ST1A 110.0")
    pp.create_load(net, hv[1], p_mw=20.0, q_mvar=4.0, name="HV load")
    pp.create_sgen(net, hv[2], p_mw=30.0, name="HV wind", type="Wind")
    for f, hv_bus in enumerate((hv[1], hv[2])):
        mv = [pp.create_bus(net, 20.0, name=f"MV{f}.{i}") for i in range(3)]
        pp.create_transformer(net, hv_bus, mv[0], "25 MVA 110/20 kV", name=f"T{f}")
        for a, b in ((0, 1), (1, 2)):
            pp.create_line(net, mv[a], mv[b], 3.0, "NA2XS2Y 1x240 RM/25 12/20 kV")
        pp.create_load(net, mv[1], p_mw=3.0, q_mvar=0.6, name=f"MV{f} load 1")
        pp.create_load(net, mv[2], p_mw=2.0, q_mvar=0.4, name=f"MV{f} load 2")
        pp.create_sgen(net, mv[2], p_mw=4.0, name=f"MV{f} PV", type="PV")
    pp.create_storage(net, mv[1], p_mw=0.0, max_e_mwh=4.0, soc_percent=50.0, name="MV1 battery")
    return net


def profiles(net) -> pd.DataFrame:
    """A day shape for loads, a sun curve for PV, a steady wind; absolute MW per element."""
    t = np.arange(PROFILE_ROWS) % 96 / 4.0  # hour of the day
    day = 0.7 + 0.3 * np.sin((t - 6.0) / 24.0 * 2 * np.pi).clip(0)
    sun = np.sin((t - 6.0) / 12.0 * np.pi).clip(0)
    cols = {}
    for i, row in net.load.iterrows():
        cols[f"load.{i}.p_mw"] = row.p_mw * day
        cols[f"load.{i}.q_mvar"] = row.q_mvar * day
    for i, row in net.sgen.iterrows():
        shape = sun if row.type == "PV" else 0.6 + 0.1 * np.cos(t / 24.0 * 2 * np.pi)
        cols[f"sgen.{i}.p_mw"] = row.p_mw * shape
    for i in net.storage.index:
        cols[f"storage.{i}.p_mw"] = np.zeros(PROFILE_ROWS)
    return pd.DataFrame(cols)


def write(folder: Path) -> tuple[Path, Path]:
    """Save the net (pandapower JSON) and its profiles (CSV) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    net = build_net()
    grid, prof = folder / "grid.json", folder / "profiles.csv"
    pp.to_json(net, str(grid))
    profiles(net).to_csv(prof, index=False)
    return grid, prof


def scenario_toml(grid: Path, prof: Path, steps: int = 4, extra: str = "") -> str:
    return (f'name = "own"\n[grid]\nsource = "pandapower"\nfile = "{grid}"\n'
            f'interface_kv = 110.0\nprofiles = "{prof}"\nprofiles_start = 2023-03-01T00:00:00\n'
            f'[run]\nstart = 2023-03-01T10:00:00\nsteps = {steps}\n' + extra)
