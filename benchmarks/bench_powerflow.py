"""The co-simulation's power flow against pandapower's `runpp` and against the solver before
issue 11's speed-ups, all in the same command.

    python benchmarks/bench_powerflow.py [STEPS] [SCHEMES] [BEFORE]
    # default: 96 steps, every scheme, BEFORE = 54de800 (the last commit before the changes)

1. Solve by solve: for every step of a `default` day, the D level (all D grids, islands of one
   net) and then the T level with the D grids' interface exchange, each solved by
   `core/powerflow.py:GridModel.solve` and by `pandapower.runpp` on a copy of the same net with
   the same injections and slack voltages. Prints ms per solve of each, the ratio, and the
   largest voltage difference over every bus and step (target: <= 1e-6 pu).
2. Per scheme, a `default` run of STEPS steps with today's solver and one with the solver of
   commit BEFORE (its `core/powerflow.py`, read with `git show`, loaded in place of today's in a
   separate process; the simulators are today's): power-flow ms per step (the run's own
   `--profile` timing), solves per step (calls of `GridModel.solve`, and how many of them were
   answered without a Newton step), the ratio before/now, and the largest differences between
   the two runs' recorded bus voltages (pu) and branch loadings (percentage points) over every
   grid and step (target: <= 1e-6 pu and <= 1e-4 pp).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEFORE = "54de800"  # main before issue 11's power-flow changes


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


def use_solver_of(commit: str) -> None:
    """Load `core/powerflow.py` as of `commit` as `tsodso.core.powerflow` (before anything
    imports today's)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:core/powerflow.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot read core/powerflow.py at {commit}: {exc}") from None
    path = Path(tempfile.mkdtemp()) / "powerflow_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("tsodso.core.powerflow", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["tsodso.core.powerflow"] = module
    spec.loader.exec_module(module)
    import tsodso.core

    tsodso.core.powerflow = module


def child(scheme: str, steps: int, out: str, commit: str | None) -> None:
    """One run (in its own process); prints its power-flow figures as JSON."""
    import h5py

    if commit:
        use_solver_of(commit)
    from tsodso.core import powerflow
    from tsodso.scenarios.load import load

    from tsodso.runner import run

    count = {"solves": 0, "no_step": 0}
    original = powerflow.GridModel.solve

    def counted(self, *args, **kwargs):
        res = original(self, *args, **kwargs)
        count["solves"] += 1
        count["no_step"] += res.iterations == 0
        return res

    powerflow.GridModel.solve = counted
    run(load("default", {"run.steps": steps}), scheme, Path(out), profile=True)
    with h5py.File(out) as f:
        count["powerflow_s"] = float(f["timing"].attrs["powerflow_s"])
    print(json.dumps(count))


def compare(a: str, b: str) -> tuple[float, float, str]:
    """Largest |dV| (pu) and |d loading| (pp) between two runs' recorded grids, and where
    the voltages first differ by more than 1e-6 pu (step and grid), if anywhere."""
    import h5py

    dv = dl = 0.0
    first = (np.inf, "")
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for g in fa["grids"]:
            va, vb = fa["grids"][g]["vm_pu"][()], fb["grids"][g]["vm_pu"][()]
            la = fa["grids"][g]["branch_loading_percent"][()]
            lb = fb["grids"][g]["branch_loading_percent"][()]
            d = np.nan_to_num(np.abs(va - vb), nan=0.0).max(axis=1, initial=0.0)
            dv = max(dv, float(d.max(initial=0.0)))
            dl = max(dl, float(np.nanmax(np.abs(la - lb), initial=0.0)))
            off = np.flatnonzero(d > 1e-6)
            if len(off) and off[0] < first[0]:
                first = (int(off[0]), g)
    where = f" (from step {first[0]}, {first[1]})" if first[1] else ""
    return dv, dl, where


def before_after(steps: int, schemes: list[str], commit: str, runpp_ms: float) -> None:
    """Each scheme with today's solver and with `commit`'s, each in its own process."""
    print(f"\ndefault, {steps} steps: power flow ms per step (the run's --profile timing), "
          f"solves per step (of them answered without a Newton step); before = {commit}")
    print(f"{'scheme':17s} {'before':>7s} {'now':>7s} {'ratio':>6s} {'solves before':>14s} "
          f"{'solves now':>16s} {'runpp':>7s} {'/now':>5s} {'max|dV| pu':>10s} "
          f"{'max|dL| pp':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in schemes:
            fig = {}
            for label, ref in (("before", commit), ("now", "")):
                out = str(Path(tmp) / f"{scheme}-{label}.h5")
                cmd = [sys.executable, __file__, "--child", scheme, str(steps), out, ref]
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                fig[label] = json.loads(done.stdout.strip().splitlines()[-1]) | {"out": out}
            b, n = fig["before"], fig["now"]
            ms_b, ms_n = 1e3 * b["powerflow_s"] / steps, 1e3 * n["powerflow_s"] / steps
            runpp = runpp_ms * b["solves"] / steps
            dv, dl, where = compare(b["out"], n["out"])
            print(f"{scheme:17s} {ms_b:7.1f} {ms_n:7.1f} {ms_b / ms_n:6.1f} "
                  f"{b['solves'] / steps:7.2f} ({b['no_step'] / steps:4.2f}) "
                  f"{n['solves'] / steps:9.2f} ({n['no_step'] / steps:4.2f}) {runpp:7.0f} "
                  f"{runpp / ms_n:5.0f} {dv:10.1e} {dl:10.1e}{where}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--child":
        child(args[1], int(args[2]), args[3], args[4] or None)
        sys.exit(0)
    from tsodso.coordination.schemes import scheme_names

    n_steps = int(args[0]) if args else 96
    names = args[1].split(",") if len(args) > 1 and args[1] else scheme_names()
    ref_ms = solve_by_solve(n_steps)
    before_after(n_steps, names, args[2] if len(args) > 2 else BEFORE, ref_ms)
