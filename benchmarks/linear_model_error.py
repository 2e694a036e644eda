"""Error of the D grids' linear model (coordination.dnetwork) against the AC power flow.

    python benchmarks/linear_model_error.py [every] [seed] [vm_pu] [loading_pp]
    # default: every 8th step, seed 7, the markets' refresh tolerances (coordination.dgrids)

On the `default` scenario day, for every `every`-th step: solve the realised AC base, compute
the sensitivities there, apply a realistic activation of the D resources (30 % of each offered
D RES curtailment; 50 % of each storage offer, up or down at random), predict voltages and
loadings linearly, and compare with the AC power flow of the activated state. Three linear
models are compared: the sensitivities recomputed at every sampled step ("recomputed"); the
markets' model (`DGridView.refresh`: re-linearised per D grid only when the grid's AC state
has moved beyond the refresh tolerances since its last linearisation, checked at every step of
the day, "refreshed"); and the coefficients of the first sampled step kept fixed for the day
("fixed", what the markets used before the refresh; only the base operating point updated).
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import replace  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from tsodso.coordination.dnetwork import sensitivities  # noqa: E402
from tsodso.scenarios.load import load  # noqa: E402
from tsodso.scenarios.world import prepare  # noqa: E402

RES_CURTAIL = 0.3
STORAGE_USE = 0.5
NEAR_LIMIT = 80.0  # loading percent: errors on branches near their limit matter most


def _bus_injection(net, table: str, dp: np.ndarray, sign: float) -> tuple[np.ndarray, ...]:
    df = net[table]
    return df.bus.to_numpy(), sign * dp * (df.scaling * df.in_service).to_numpy(float)


def main(every: int = 8, seed: int = 7, vm_pu: float | None = None,
         loading_pp: float | None = None) -> None:
    t0 = time.perf_counter()
    ctx = prepare(load("default"), "none")
    print(f"prepare(default): {time.perf_counter() - t0:.1f} s")
    rt = ctx.levels["D"]
    model, net, pf = rt.model, rt.model.net, ctx.portfolio
    book = pf.book
    d_slot = book.level == "D"
    inj_bus = np.unique(np.asarray(pf.slot_bus, dtype=np.int64)[d_slot])  # list or array
    col = {int(b): j for j, b in enumerate(inj_bus)}
    res_down = d_slot & np.isin(book.kind, ("wind", "pv", "other_res")) & (book.direction < 0)
    sto = np.flatnonzero(d_slot & (book.kind == "storage"))
    sto_res = np.array([r.rsplit(":", 1)[0] for r in book.resource[sto]])
    rng = np.random.default_rng(seed)
    print(f"D net: {len(net.bus)} buses ({model.n_bus_int} internal), "
          f"{len(model.branch_rows)} branches, {len(inj_bus)} injection buses, "
          f"{int(res_down.sum())} RES down slots, {len(np.unique(sto_res))} storage resources")

    sens0 = None
    t_sens: list[float] = []
    t_refresh: list[float] = []
    n_refreshed: list[int] = []
    rows = []
    dg = ctx.market.distribution  # the markets' view of the D grids, refreshed as in a run
    dg = replace(dg, refresh_vm_pu=dg.refresh_vm_pu if vm_pu is None else vm_pu,
                 refresh_loading_percent=(dg.refresh_loading_percent if loading_pp is None
                                          else loading_pp))
    for k in range(ctx.n_steps):
        base = (rt.re_load_p[k], rt.re_load_q[k], rt.re_sgen_p[k], rt.re_sgen_q[k],
                rt.re_sto_p[k], rt.re_sto_q[k])
        r0 = model.solve(*base)
        reports = {g: SimpleNamespace(vm_pu=r0.vm_pu[sl.bus], va_degree=r0.va_degree[sl.bus],
                                      loading_percent=r0.loading_percent[sl.branch],
                                      converged=True)
                   for g, sl in rt.grids.items() if g in dg.grids}
        t1 = time.perf_counter()
        n_refreshed.append(len(dg.refresh(reports)))
        t_refresh.append(time.perf_counter() - t1)
        if k % every:
            continue
        t1 = time.perf_counter()
        sens = sensitivities(model, r0, inj_bus)
        t_sens.append(time.perf_counter() - t1)
        if sens0 is None:
            sens0 = sens
            tracemalloc.start()  # a second call, traced (tracing slows allocations down)
            sensitivities(model, r0, inj_bus)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            out_mb = (sens.dv_dp.nbytes + sens.dl_dp.nbytes) / 2**20
            print(f"sensitivities: dv_dp {sens.dv_dp.shape}, dl_dp {sens.dl_dp.shape}, "
                  f"{out_mb:.0f} MiB result, peak numpy allocation {peak:.0f} MiB")

        # the activation: a fixed share of the D offers, storage direction drawn at random
        pf.offer(k)
        act = np.zeros(len(book))
        act[res_down] = RES_CURTAIL * book.mw[res_down]
        for name in np.unique(sto_res):
            pair = sto[sto_res == name]
            pick = pair[rng.integers(len(pair))]
            act[pick] = STORAGE_USE * book.mw[pick]
        setp = pf.activate(k, act)
        p_load, p_sgen, p_sto = base[0].copy(), base[2].copy(), base[4].copy()
        for g, sl in rt.grids.items():
            p_load[sl.load] += setp[g].dp_load
            p_sgen[sl.sgen] += setp[g].dp_sgen
            p_sto[sl.sto] += setp[g].dp_sto
        p_sgen = np.maximum(p_sgen, np.minimum(base[2], 0.0))  # as simulators.grid does
        # the injection change per bus that the AC flow really sees (after clipping)
        parts = [_bus_injection(net, "load", p_load - base[0], -1.0),
                 _bus_injection(net, "sgen", p_sgen - base[2], 1.0),
                 _bus_injection(net, "storage", p_sto - base[4], -1.0)]
        dp = np.zeros(len(inj_bus))
        for buses, mw in parts:
            moved = np.abs(mw) > 0
            assert all(int(b) in col for b in buses[moved]), "activation outside resource buses"
            np.add.at(dp, [col[int(b)] for b in buses[moved]], mw[moved])
        r1 = model.solve(p_load, base[1], p_sgen, base[3], p_sto, base[5])

        ok = np.isfinite(r1.vm_pu)
        truth_v, truth_l = r1.vm_pu[ok], r1.loading_percent
        near = (np.maximum(r0.loading_percent, r1.loading_percent) >= NEAR_LIMIT)
        row = dict(step=k, mw=float(np.abs(dp).sum()),
                   dv_true=np.abs(truth_v - r0.vm_pu[ok]).max(),
                   dl_true=np.abs(truth_l - r0.loading_percent).max())
        for tag, s in (("now", sens), ("ref", dg.model.sens), ("fixed", sens0)):
            vm, ld = s.predict(r0.vm_pu, r0.loading_percent, dp)
            row[f"ev_{tag}"] = np.abs(vm[ok] - truth_v).max()
            row[f"el_{tag}"] = np.abs(ld - truth_l).max()
            row[f"eln_{tag}"] = np.abs(ld - truth_l)[near].max(initial=0.0)
            worst_br = int(np.argmax(np.abs(ld - truth_l)))
            row[f"at_{tag}"] = (r0.loading_percent[worst_br], truth_l[worst_br])
        rows.append(row)

    print()
    print(" step  |dP| MW  true max|dV| max|dL| | recomputed: eV pu   eL pp  eL>=80% "
          "| refreshed: eV pu   eL pp  eL>=80% | fixed(step 0): eV pu   eL pp  eL>=80%")
    for r in rows:
        print(f"{r['step']:5d} {r['mw']:8.2f} {r['dv_true']:13.5f} {r['dl_true']:7.2f} |"
              f" {r['ev_now']:19.2e} {r['el_now']:7.3f} {r['eln_now']:8.3f} |"
              f" {r['ev_ref']:18.2e} {r['el_ref']:7.3f} {r['eln_ref']:8.3f} |"
              f" {r['ev_fixed']:22.2e} {r['el_fixed']:7.3f} {r['eln_fixed']:8.3f}")

    def worst(key: str) -> float:
        return max(r[key] for r in rows)

    print()
    print(f"largest true change over the day: |dV| {worst('dv_true'):.4f} pu, "
          f"|dloading| {worst('dl_true'):.2f} pp")
    for tag, label in (("now", "recomputed each step"), ("ref", "refreshed (markets) "),
                       ("fixed", "fixed from step 0   ")):
        at = max(rows, key=lambda r: r[f"el_{tag}"])
        print(f"{label}: max voltage error {worst(f'ev_{tag}'):.2e} pu, max loading error "
              f"{worst(f'el_{tag}'):.3f} pp (branches >= {NEAR_LIMIT:.0f} %: "
              f"{worst(f'eln_{tag}'):.3f} pp); worst at step {at['step']} on a branch going "
              f"from {at[f'at_{tag}'][0]:.1f} % to {at[f'at_{tag}'][1]:.1f} %")
    ts = np.array(t_sens) * 1e3
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"one sensitivity computation: median {np.median(ts):.0f} ms, min {ts.min():.0f} ms, "
          f"max {ts.max():.0f} ms over {len(ts)} steps (OPENBLAS_NUM_THREADS={blas})")
    tr = np.array(t_refresh) * 1e3
    busy = np.array(n_refreshed) > 0
    print(f"refresh (tolerances {dg.refresh_vm_pu:g} pu, {dg.refresh_loading_percent:g} pp): "
          f"{int(busy.sum())} of {len(tr)} steps re-linearised {sum(n_refreshed)} grid(s) "
          f"(of {len(dg.grids)}), {np.mean(tr):.0f} ms per step on average, "
          f"{np.median(tr[busy]) if busy.any() else 0.0:.0f} ms median when it refreshed")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]] + [float(a) for a in sys.argv[3:5]]
    main(*args)
