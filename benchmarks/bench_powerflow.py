"""The co-simulation's power flow against pandapower's `runpp` of the same nets, same command.

    python benchmarks/bench_powerflow.py [STEPS] [SCHEME]    # default: 96 common

1. Solve by solve: for every step of a `default` day, the D level (all D grids, islands of one
   net) and then the T level with the D grids' interface exchange, each solved by
   `core/powerflow.py:GridModel.solve` and by `pandapower.runpp` on a copy of the same net with
   the same injections and slack voltages. Prints ms per solve of each, the ratio, and the
   largest voltage difference over every bus and step (target: <= 1e-6 pu).
2. In a co-simulation run of SCHEME (in this process): solves per step and power-flow ms per
   step, so that the per-step cost can be set against runpp's per solve.
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def solve_by_solve(steps: int) -> float:
    """Ours vs runpp on the same inputs; returns runpp's ms per solve."""
    import pandapower as pp
    from tsodso.scenarios.load import load
    from tsodso.scenarios.world import prepare

    ctx = prepare(load("default", {"run.steps": steps}), "none")
    d_rt, t_rt = ctx.levels["D"], ctx.levels["T"]
    ref_net = {lv: copy.deepcopy(ctx.levels[lv].model.net) for lv in ("D", "T")}
    ours = {"D": 0.0, "T": 0.0}
    theirs = {"D": 0.0, "T": 0.0}
    worst = {"D": 0.0, "T": 0.0}
    iface_branch = {i.name: (sl.iface_branch[j]) for sl in d_rt.grids.values()
                    for j, i in enumerate(sl.interfaces)}
    for k in range(steps):
        inj = {"D": [np.array(a[k]) for a in (d_rt.re_load_p, d_rt.re_load_q, d_rt.re_sgen_p,
                                               d_rt.re_sgen_q, d_rt.re_sto_p, d_rt.re_sto_q)]}
        t0 = time.perf_counter()
        res_d = d_rt.model.solve(*inj["D"])
        ours["D"] += time.perf_counter() - t0
        t_inj = [np.array(a[k]) for a in (t_rt.re_load_p, t_rt.re_load_q, t_rt.re_sgen_p,
                                          t_rt.re_sgen_q, t_rt.re_sto_p, t_rt.re_sto_q)]
        for j, i in enumerate(t_rt.interfaces):
            b = iface_branch[i.name]
            t_inj[0][t_rt.iface_load[j]] = res_d.p_from_mw[b]
            t_inj[1][t_rt.iface_load[j]] = res_d.q_from_mvar[b]
        inj["T"] = t_inj
        t0 = time.perf_counter()
        res_t = t_rt.model.solve(*t_inj)
        ours["T"] += time.perf_counter() - t0
        for lv, res in (("D", res_d), ("T", res_t)):
            net = ref_net[lv]
            p_load, q_load, p_sgen, q_sgen, p_sto, q_sto = inj[lv]
            net.load["p_mw"], net.load["q_mvar"] = p_load, q_load
            net.sgen["p_mw"], net.sgen["q_mvar"] = p_sgen, q_sgen
            net.storage["p_mw"], net.storage["q_mvar"] = p_sto, q_sto
            t0 = time.perf_counter()
            pp.runpp(net, numba=False)
            theirs[lv] += time.perf_counter() - t0
            diff = np.abs(res.vm_pu - net.res_bus.vm_pu.to_numpy())
            worst[lv] = max(worst[lv], float(np.nanmax(diff)))
    for lv in ("D", "T"):
        a, b = 1e3 * ours[lv] / steps, 1e3 * theirs[lv] / steps
        print(f"{lv} level ({len(ref_net[lv].bus)} buses): GridModel.solve {a:6.2f} ms, runpp "
              f"{b:6.1f} ms per solve, ratio runpp/ours {b / a:5.1f}; max |dV| over "
              f"{steps} steps {worst[lv]:.1e} pu")
    return 1e3 * (theirs["D"] + theirs["T"]) / (2 * steps)


def in_the_run(steps: int, scheme: str, runpp_ms: float) -> None:
    """Solves per step and their cost inside a co-simulation run of `scheme`."""
    from tsodso.core import powerflow
    from tsodso.scenarios.load import load

    from tsodso.runner import run

    count = {"solves": 0, "seconds": 0.0}
    by_size: dict[int, int] = {}  # solves per net (by its number of buses)
    original = powerflow.GridModel.solve

    def counted(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            count["solves"] += 1
            count["seconds"] += time.perf_counter() - t0
            by_size[len(self.net.bus)] = by_size.get(len(self.net.bus), 0) + 1

    powerflow.GridModel.solve = counted
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run(load("default", {"run.steps": steps}), scheme, Path(tmp) / "pf.h5")
    finally:
        powerflow.GridModel.solve = original
    n = count["solves"] - 2  # the two solves of the set-up (sensitivities at step 0)
    per_solve = 1e3 * count["seconds"] / max(count["solves"], 1)
    print(f"default/{scheme}, {steps} steps: {n / steps:.2f} solves per step, "
          f"{per_solve:.2f} ms per solve, {1e3 * count['seconds'] / steps:.1f} ms of power flow "
          f"per step; with runpp ({runpp_ms:.1f} ms per solve) the same solves would take "
          f"{runpp_ms * n / steps:.0f} ms per step, ratio {runpp_ms / per_solve:.1f}")
    print("  solves per step by net: " + ", ".join(
        f"{b} buses {c / steps:.2f}" for b, c in sorted(by_size.items())))


if __name__ == "__main__":
    args = sys.argv[1:]
    n_steps = int(args[0]) if args else 96
    ref_ms = solve_by_solve(n_steps)
    in_the_run(n_steps, args[1] if len(args) > 1 else "common", ref_ms)
