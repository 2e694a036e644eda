"""mosaik simulators of the grids: one for the TSO's transmission grid, one for the DSO grids.

Coupling inside a step is a mosaik same-time loop: every D grid sends its interface exchange
(P, Q at the HV side of its HV/MV transformers, positive from T into D) to the T grid; the T grid
solves and returns the interface voltages over a weak connection; the D grids solve again with
them. The T grid ends the loop (sends no voltages) once no exchange moved by more than the
scenario's tolerance since the previous iteration, and then reports its state.

Each grid runs on realised values (forecast + forecast error) plus the set-point changes of
the activations it has been sent in this step.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import mosaik_api_v3
import numpy as np

from simulators.flexibility import Setpoints
from simulators.powerflow import GridModel, PowerFlowNotConverged


V_TOL_PU = 1e-5  # interface voltage change that still counts as converged


@dataclass
class GridReport:
    """The solved state of one grid at one loop iteration."""

    grid: str
    level: str
    time: int
    vm_pu: np.ndarray
    loading_percent: np.ndarray
    p_from_mw: np.ndarray
    imbalance_mw: float  # realised - forecast net injection of the grid's assets (+ = long)
    interface_s: dict[str, complex]  # D grids: exchange per interface (MVA, from T into D)
    converged: bool
    iterations: int


@dataclass
class GridRuntime:
    """What a grid simulator needs of one grid: its model and its realised time series."""

    name: str
    level: str
    model: GridModel
    re_load_p: np.ndarray  # (steps, n_load) realised, including interface loads (T) at the end
    re_load_q: np.ndarray
    re_sgen_p: np.ndarray
    re_sgen_q: np.ndarray
    re_sto_p: np.ndarray
    re_sto_q: np.ndarray
    imbalance: np.ndarray  # (steps,) realised - forecast net injection, MW
    interfaces: list  # scenarios.split.Interface objects touching this grid
    iface_branch: np.ndarray  # D: branch position of each interface transformer
    iface_slack: np.ndarray  # D: slack position fed by each interface (index into model.ref)
    iface_load: np.ndarray  # T: load position of each interface
    iface_hv_bus: np.ndarray  # T: pandapower HV bus of each interface


def _meta(level: str) -> dict:
    attrs = ["setpoints", "report"]
    attrs += ["interface_v", "interface_s"]
    return {
        "api_version": "3.0",
        "type": "event-based",
        "models": {"Grid": {"public": True, "params": ["grid"], "attrs": attrs}},
    }


class GridSim(mosaik_api_v3.Simulator):
    """Runs the AC power flows of one or more grids of one level."""

    def __init__(self) -> None:
        super().__init__(_meta("T"))
        self.grids: dict[str, GridRuntime] = {}
        self.state: dict[str, dict] = {}

    def init(self, sid, time_resolution=1.0, ctx=None, level: str = "T"):
        self.ctx = ctx
        self.level = level
        self.step_s = ctx.step_s
        self.tol = ctx.scenario.coupling.tolerance_mw
        self.max_iter = ctx.scenario.coupling.max_iterations
        return self.meta

    def create(self, num, model, grid: str):
        rt: GridRuntime = self.ctx.runtimes[grid]
        self.grids[grid] = rt
        self.state[grid] = dict(time=-1, iteration=0, last_s=None, dp=None, report=None,
                                v_out=None, iface_v=None, done=False)
        return [{"eid": grid, "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // self.step_s
        for eid, data in inputs.items():
            st = self.state[eid]
            if st["time"] != time:  # a new step: forget last step's activations
                st.update(time=time, iteration=0, dp=None, done=False)
            for sp in data.get("setpoints", {}).values():
                if sp is not None:
                    st["dp"] = sp[eid]
                    st["done"] = False
            for v in data.get("interface_v", {}).values():
                st["iface_v"] = v
            if "interface_s" in data:
                s_in: dict[str, complex] = {}
                for part in data["interface_s"].values():
                    s_in.update(part)
                st["s_in"] = s_in
        for eid in inputs:
            self._solve(eid, k, time)
        return None

    def _injections(self, rt: GridRuntime, k: int, dp: Setpoints | None, st: dict):
        p_load = rt.re_load_p[k].copy()
        p_sgen = rt.re_sgen_p[k].copy()
        p_sto = rt.re_sto_p[k].copy()
        if dp is not None:
            n = len(dp.dp_load)
            p_load[:n] += dp.dp_load
            p_sgen += dp.dp_sgen
            p_sgen = np.maximum(p_sgen, np.minimum(rt.re_sgen_p[k], 0.0))
            p_sto += dp.dp_sto
        q_load = rt.re_load_q[k].copy()
        if rt.level == "T" and st.get("s_in"):
            for j, iface in enumerate(rt.interfaces):
                s = st["s_in"].get(iface.name)
                if s is not None:
                    p_load[rt.iface_load[j]] = s.real
                    q_load[rt.iface_load[j]] = s.imag
        return p_load, q_load, p_sgen, rt.re_sgen_q[k], p_sto, rt.re_sto_q[k]

    def _solve(self, eid: str, k: int, time: int) -> None:
        rt, st = self.grids[eid], self.state[eid]
        v_ref = None
        if rt.level == "D" and st["iface_v"] is not None:
            v_ref = rt.model.v_ref.copy()
            for j, iface in enumerate(rt.interfaces):
                v_ref[rt.iface_slack[j]] = st["iface_v"][iface.name]
        t0 = _time.perf_counter()
        converged = True
        try:
            res = rt.model.solve(*self._injections(rt, k, st["dp"], st), v_ref=v_ref)
        except PowerFlowNotConverged:
            converged = False
            res = None
        self.ctx.timing["powerflow_s"] += _time.perf_counter() - t0
        st["iteration"] += 1
        if res is None:
            n_b, n_br = len(rt.model.bus_index), len(rt.model.branch_rows)
            vm, ld, pf = np.full(n_b, np.nan), np.full(n_br, np.nan), np.full(n_br, np.nan)
        else:
            vm, ld, pf = res.vm_pu, res.loading_percent, res.p_from_mw
        iface_s: dict[str, complex] = {}
        if rt.level == "D" and res is not None:
            for j, iface in enumerate(rt.interfaces):
                b = rt.iface_branch[j]
                iface_s[iface.name] = complex(res.p_from_mw[b], res.q_from_mvar[b])
        st["report"] = GridReport(eid, rt.level, time, vm, ld, pf, float(rt.imbalance[k]),
                                  iface_s, converged, st["iteration"])
        if rt.level == "T":
            self._t_loop_control(rt, st, res)

    def _t_loop_control(self, rt: GridRuntime, st: dict, res) -> None:
        """Decide whether the D grids must solve again with new interface voltages.

        The loop has converged when no interface exchange moved by more than the tolerance
        since the previous iteration and the interface voltages did not move either.
        """
        s_in = st.get("s_in") or {}
        last = st.get("last_s") or {}
        moved = max((abs(s_in[n] - last.get(n, np.inf)) for n in s_in), default=0.0)
        st["last_s"] = dict(s_in)
        if res is None or st["iteration"] > self.max_iter:
            st["v_out"] = None
            return
        v = rt.model.bus_voltage(rt.iface_hv_bus)
        v_new = {i.name: complex(v[j]) for j, i in enumerate(rt.interfaces)}
        sent = st.get("v_sent") or {}
        dv = max((abs(v_new[n] - sent.get(n, np.inf)) for n in v_new), default=0.0)
        if moved < self.tol and dv < V_TOL_PU:
            st["v_out"] = None
            return
        st["v_out"] = st["v_sent"] = v_new

    def get_data(self, outputs):
        data: dict = {}
        for eid, attrs in outputs.items():
            st = self.state[eid]
            out: dict = {}
            for attr in attrs:
                if attr == "interface_s" and st["report"] is not None:
                    out[attr] = st["report"].interface_s
                elif attr == "interface_v" and st.get("v_out") is not None:
                    out[attr] = st["v_out"]
                elif attr == "report" and st["report"] is not None:
                    if self.grids[eid].level == "D" or st.get("v_out") is None:
                        out[attr] = st["report"]
            data[eid] = out
        return data
