"""Scan the SimBench year for days on which the D grids are congested, with a scenario's growth.

    python benchmarks/scan_dgrid.py dgrid            # every hour of 2016, top days
    python benchmarks/scan_dgrid.py dgrid --every 4 --top 15 --set growth.d_stress=0

For each sampled quarter hour, an AC power flow of the D grids alone (GridModel) with the
scenario's forecasts (profiles after growth, no forecast error, no market) and each grid's MV
busbar moved to `grid.mv_busbar_pu` by an ideal continuous tap changer (the grid's voltages
scaled by target / busbar voltage, which is what a tap change does to a radial MV grid).
It counts, per day, MV branch-steps above `limits.D.loading_max_percent` and MV bus-steps
outside the `limits.D` band, and the steps on which one grid's voltage spread (max - min) is
wider than the band, which no tap position fixes. Used to choose the `dgrid` day
(docs/scenarios.md).
"""

from __future__ import annotations

import argparse
import ast
import sys
import time

import numpy as np
import pandas as pd
from tsodso.core.powerflow import GridModel
from tsodso.scenarios.grids import interface_trafos
from tsodso.scenarios.load import load
from tsodso.scenarios.schema import PROFILE_ROWS, PROFILE_START
from tsodso.scenarios.split import split_net
from tsodso.scenarios.world import load_grid, profile_rows, quiet_libraries


def scan(name: str, every: int, overrides: dict) -> pd.DataFrame:
    """Per sampled row: overloaded branches, buses out of band, grids with too wide a spread."""
    quiet_libraries()
    sc = load(name, overrides)
    net, prof = load_grid(sc)
    split = split_net(net, interface_trafos(sc, net))
    d = split.d_net
    model = GridModel(d)
    lim = sc.limits.D
    target = sc.grid.mv_busbar_pu or 1.0
    bus_pos = {int(b): j for j, b in enumerate(d.bus.index)}
    hv = {i.hv_bus for i in split.interfaces}
    n_line = len(d.line)
    grids = []
    for g, buses in split.d_buses.items():
        own = [bus_pos[b] for b in buses if b not in hv]
        busbar = [bus_pos[int(d.trafo.lv_bus[i.trafo])] for i in split.interfaces if i.grid == g]
        bset = set(buses)
        branch = np.r_[np.flatnonzero(d.line.from_bus.isin(bset).to_numpy()),
                       n_line + np.flatnonzero(d.trafo.lv_bus.isin(bset).to_numpy())]
        grids.append((g, np.array(own), busbar[0], branch))
    rows = np.arange(0, PROFILE_ROWS, every)
    q_sgen = d.sgen.q_mvar.to_numpy(float)
    q_sto = np.zeros(len(d.storage))
    out = []
    for chunk in np.array_split(rows, max(1, len(rows) // 96)):
        def get(table, col, index, fallback, chunk=chunk):
            df = prof.get((table, col))
            if df is None or not df.shape[1]:
                return np.tile(fallback, (len(chunk), 1))
            v = profile_rows(df, chunk, index)
            return np.where(np.isnan(v), fallback[None, :], v)
        pl = get("load", "p_mw", d.load.index, d.load.p_mw.to_numpy(float))
        ql = get("load", "q_mvar", d.load.index, d.load.q_mvar.to_numpy(float))
        ps = get("sgen", "p_mw", d.sgen.index, d.sgen.p_mw.to_numpy(float))
        pt = get("storage", "p_mw", d.storage.index, d.storage.p_mw.to_numpy(float))
        for k, row in enumerate(chunk):
            res = model.solve(pl[k], ql[k], ps[k], q_sgen, pt[k], q_sto)
            over = trafo = high = low = wide = 0
            worst_load, vmax, vmin = 0.0, 0.0, 2.0
            for _g, own, busbar, branch in grids:
                vm = res.vm_pu[own] * target / res.vm_pu[busbar]
                high += int(np.sum(vm > lim.vm_max_pu))
                low += int(np.sum(vm < lim.vm_min_pu))
                wide += int(vm.max() - vm.min() > lim.vm_max_pu - lim.vm_min_pu)
                vmax, vmin = max(vmax, float(vm.max())), min(vmin, float(vm.min()))
                ld = res.loading_percent[branch]
                hot = ld > lim.loading_max_percent
                over += int(np.sum(hot))
                trafo += int(np.sum(hot & (branch >= n_line)))
                worst_load = max(worst_load, float(ld.max()))
            out.append((int(row), over, trafo, high + low, high, low, wide, worst_load, vmax,
                        vmin))
    df = pd.DataFrame(out, columns=["row", "overloads", "trafo_over", "v_out", "v_high",
                                    "v_low", "wide", "max_loading", "max_vm", "min_vm"])
    df["day"] = (PROFILE_START + pd.to_timedelta(df.row * 900, unit="s")).dt.date
    return df


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--every", type=int, default=4, help="sample every n-th quarter hour")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--day", help="print this day's sampled steps (YYYY-MM-DD)")
    ap.add_argument("--set", action="append", default=[], help="override key=value")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = ast.literal_eval(value)
    t0 = time.perf_counter()
    df = scan(args.scenario, args.every, overrides)
    if args.day:
        df["time"] = (PROFILE_START + pd.to_timedelta(df.row * 900, unit="s")).dt.strftime(
            "%m-%d %H:%M")
        print(df[df.day.astype(str) == args.day].drop(columns=["row", "day"]).to_string(
            index=False, float_format="%.3f"))
        return 0
    per_day = df.groupby("day").agg(
        overloads=("overloads", "sum"), trafo_over=("trafo_over", "sum"), v_out=("v_out", "sum"),
        v_high=("v_high", "sum"), v_low=("v_low", "sum"), wide=("wide", "sum"),
        max_loading=("max_loading", "max"), max_vm=("max_vm", "max"), min_vm=("min_vm", "min"))
    both = per_day[(per_day.overloads > 0) & (per_day.v_out > 0)]
    print(f"{args.scenario} {overrides or ''}: {len(df)} power flows in "
          f"{time.perf_counter() - t0:.0f} s (every {args.every} quarter hours)")
    print(f"year: {int(per_day.overloads.sum())} branch-steps overloaded, "
          f"{int(per_day.v_out.sum())} bus-steps out of band, {int(per_day.wide.sum())} "
          f"grid-steps wider than the band; days with overloads "
          f"{int((per_day.overloads > 0).sum())}, with both {len(both)}")
    rank = both.assign(score=both.overloads.rank() + both.v_out.rank()).sort_values(
        "score", ascending=False)
    print(rank.head(args.top).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
