"""mosaik simulators of the grids: one for the TSO's transmission grid, one for the DSO grids.

Each simulator has one mosaik entity, its level (`T` or `D`), whose attributes carry the data of
all the level's grids: `setpoints` (in: grid -> `Setpoints`), `report` (out: grid ->
`GridReport`), `interface_s` (D out, T in: interface -> exchange) and `interface_v` (T out, D in:
interface -> voltage). The level's grids are solved as one net anyway; one entity per grid
would only multiply mosaik's routing of the same data (one connection per grid and attribute).

Coupling inside a step is a mosaik same-time loop: the D grids send their interface exchange
(P, Q at the HV side of the HV/MV transformers, positive from T into D) to the T grid; the T grid
solves and returns the interface voltages over a weak connection; the D grids solve again with
them. The T grid ends the loop (sends no voltages) once no exchange moved by more than the
scenario's tolerance since the previous iteration, and then reports its state.

Each grid runs on realised values (forecast + forecast error) plus the set-point changes of
the activations it has been sent in this step.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import mosaik_api_v3
import numpy as np
from tsodso.core.powerflow import GridModel, PowerFlowNotConverged
from tsodso.simulators.flexibility import Setpoints
from tsodso.simulators.taps import TapChangers, TapSettings
from tsodso.simulators.timing import Timing

V_TOL_PU = 1e-5  # interface voltage change that still counts as converged


@dataclass(frozen=True)
class SetpointControl:
    """The TSO's voltage set-point control of the T grid (see `GridSim._control_voltage`)."""

    vm_min_pu: float
    vm_max_pu: float
    margin_pu: float
    max_change_pu: float


@dataclass(frozen=True)
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
    # D grids: the state without the TSO's activations in the grid (AC counterfactual for
    # the conflict rules), when the TSO activated D-connected resources this step
    vm_without_tso: np.ndarray | None = None
    loading_without_tso: np.ndarray | None = None
    tap_pos: dict[str, float] | None = None  # D grids: tap position per interface transformer
    # voltage angles of the grid's buses (degrees): with vm_pu the complex state the markets
    # linearise the D grids at (coordination.dgrids.DGridView.refresh)
    va_degree: np.ndarray | None = None


@dataclass
class GridSlice:
    """Where one grid sits in its level's net: positions of its buses, branches, elements."""

    name: str
    bus: np.ndarray
    branch: np.ndarray
    load: np.ndarray  # flexible/real loads (the T net's interface loads are not among them)
    sgen: np.ndarray
    sto: np.ndarray
    interfaces: list  # scenarios.split.Interface objects of this grid (D) or all (T)
    iface_branch: np.ndarray  # D: branch position of each interface transformer
    iface_slack: np.ndarray  # D: slack position fed by each interface (index into model.ref)


@dataclass
class LevelRuntime:
    """One level's net (the T net, or all D grids as islands of one net) and its realised
    time series; one power flow per iteration solves every grid of the level."""

    level: str
    model: GridModel
    grids: dict[str, GridSlice]
    re_load_p: np.ndarray  # (steps, n_load) realised, in the level net's element order
    re_load_q: np.ndarray
    re_sgen_p: np.ndarray
    re_sgen_q: np.ndarray
    re_sto_p: np.ndarray
    re_sto_q: np.ndarray
    imbalance: dict[str, np.ndarray]  # grid -> (steps,) realised - forecast net injection, MW
    iface_load: np.ndarray  # T: load position of each interface
    iface_hv_bus: np.ndarray  # T: pandapower HV bus of each interface
    interfaces: list


META = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {"Grid": {"public": True, "params": [],
                        "attrs": ["setpoints", "report", "interface_v", "interface_s"]}},
}


class GridSim(mosaik_api_v3.Simulator):
    """Runs the AC power flow of one level; one entity, the level, for all its grids."""

    def __init__(self) -> None:
        super().__init__(META)
        self.state: dict[str, dict] = {}  # grid -> this step's set-points
        self.time = -1
        self.created = False

    def init(self, sid, time_resolution=1.0, runtime: LevelRuntime | None = None,
             step_s: int = 900, tolerance_mw: float = 0.01, max_iterations: int = 10,
             timing: Timing | None = None, setpoint: SetpointControl | None = None,
             taps: TapSettings | None = None):
        self.rt: LevelRuntime = runtime
        self.level = runtime.level
        self.state = {g: dict(dp=None) for g in runtime.grids}
        self.iface_s: dict[str, complex] = {}  # D: this iteration's exchange per interface
        self.step_s = step_s
        self.tol = tolerance_mw
        self.max_iter = max_iterations
        self.timing = timing or Timing()
        self.setpoint = setpoint  # T only: the TSO's set-point control
        self.v_ref0 = runtime.model.v_ref.copy()
        self.iteration = 0
        self.v_out = None
        self.v_sent: dict = {}
        self.last_s: dict = {}
        self.s_in: dict = {}
        self.reports: Mapping[str, GridReport] = {}  # the last solve's, built when read
        self._inj: dict[bool, tuple] = {}  # this step's injections (see `_injections`)
        self.taps = None  # D only: the DSOs' tap changers (see simulators/taps.py)
        self._iface_rows = None  # see _tap_loading
        self._iface_idx = None  # see _iface_index
        if taps is not None and runtime.level == "D":
            ifaces = [(i.name, i.trafo, int(sl.iface_slack[j])) for sl in runtime.grids.values()
                      for j, i in enumerate(sl.interfaces)]
            if ifaces:
                self.taps = TapChangers(runtime.model, ifaces, taps)
                self.v_hv = runtime.model.v_ref.copy()  # interface voltages without the taps
        return self.meta

    def create(self, num, model):
        if num != 1 or self.created:
            raise ValueError("a grid simulator has one entity, its level")
        self.created = True
        return [{"eid": self.level, "type": model}]

    def step(self, time, inputs, max_advance):
        if time != self.time:  # a new step: forget last step's activations
            self.time, self.iteration = time, 0
            self._inj = {}
            for st in self.state.values():
                st["dp"] = None
            if self.taps is not None:
                self.taps.new_step()
        iface_v = {}
        for data in inputs.values():
            for sp in data.get("setpoints", {}).values():
                if sp is not None:
                    for g, st in self.state.items():
                        if st["dp"] is not sp[g]:  # mosaik hands the last message on
                            st["dp"] = sp[g]  # again each loop iteration
                            self._inj = {}
            for v in data.get("interface_v", {}).values():
                if v is not None:
                    iface_v.update(v)
            for part in data.get("interface_s", {}).values():
                if part is not None:
                    self.s_in.update(part)
        self._solve(time // self.step_s, time, iface_v)
        return None

    def _injections(self, k: int, without_tso: bool = False):
        """Realised injections of step k with this step's set-point changes (`without_tso`:
        the changes without the TSO's activations in D grids, where given), with the
        interface exchanges in the T net.

        The grids' own injections are made once per step and set-point message (the loop
        iterations of a step solve with the same ones; the power flow only reads them)."""
        rt = self.rt
        own = self._inj.get(without_tso)
        if own is None:
            own = self._inj[without_tso] = self._own_injections(k, without_tso)
        if rt.level != "T" or not self.s_in:
            return own
        p_load, q_load = own[0].copy(), own[1].copy()
        s_in = [self.s_in.get(iface.name) for iface in rt.interfaces]
        if None in s_in:  # an interface without an exchange yet keeps its own load
            at = [j for j, s in enumerate(s_in) if s is not None]
            s_in = [s_in[j] for j in at]
        else:
            at = slice(None)
        rows = rt.iface_load[at]
        p_load[rows] = [s.real for s in s_in]
        q_load[rows] = [s.imag for s in s_in]
        return p_load, q_load, *own[2:]

    def _own_injections(self, k: int, without_tso: bool):
        """The level's element injections of step k with the set-point changes (no
        interface exchanges)."""
        rt = self.rt
        p_load = rt.re_load_p[k].copy()
        p_sgen = rt.re_sgen_p[k].copy()
        p_sto = rt.re_sto_p[k].copy()
        for eid, st in self.state.items():
            dp: Setpoints | None = st["dp"]
            if dp is None:
                continue
            if without_tso and dp.without_tso is not None:
                dp = dp.without_tso
            sl = rt.grids[eid]
            p_load[sl.load] += dp.dp_load
            p_sgen[sl.sgen] += dp.dp_sgen
            p_sto[sl.sto] += dp.dp_sto
        p_sgen = np.maximum(p_sgen, np.minimum(rt.re_sgen_p[k], 0.0))  # curtail to zero at most
        return p_load, rt.re_load_q[k].copy(), p_sgen, rt.re_sgen_q[k], p_sto, rt.re_sto_q[k]

    def _solve(self, k: int, time: int, iface_v: dict) -> None:
        rt = self.rt
        v_ref = None
        if rt.level == "D" and self.taps is not None:
            for sl in rt.grids.values():
                for j, iface in enumerate(sl.interfaces):
                    if iface.name in iface_v:
                        self.v_hv[sl.iface_slack[j]] = iface_v[iface.name]
            v_ref = self._tapped_v_ref()
        elif rt.level == "D" and iface_v:
            v_ref = rt.model.v_ref.copy()
            for sl in rt.grids.values():
                for j, iface in enumerate(sl.interfaces):
                    if iface.name in iface_v:
                        v_ref[sl.iface_slack[j]] = iface_v[iface.name]
        t0 = _time.perf_counter()
        cf = None
        if rt.level == "D" and any(st["dp"] is not None and st["dp"].without_tso is not None
                                   for st in self.state.values()):
            try:  # the counterfactual at the same interface voltages, solved first so that
                #   the model keeps the real state as its last solution
                cf = rt.model.solve(*self._injections(k, without_tso=True), v_ref=v_ref)
                self._tap_loading(cf)
            except PowerFlowNotConverged:
                cf = None
        if rt.level == "T" and self.setpoint is not None and self.iteration == 0:
            v_ref = self.v_ref0  # each step starts from the scenario's set-point
        try:
            res = rt.model.solve(*self._injections(k), v_ref=v_ref)
            if rt.level == "T" and self.setpoint is not None and self.iteration == 0:
                res = self._control_voltage(k, res)
            if self.taps is not None and iface_v:  # this step's HV voltages, before the
                #   market and again after it (an automatic tap changer reacts within
                #   minutes to what the activations do to the HV voltage), within the
                #   step's allowance of moves
                while self.taps.control(res.vm_pu):
                    res = rt.model.solve(*self._injections(k), v_ref=self._tapped_v_ref())
            self._tap_loading(res)
        except PowerFlowNotConverged:
            res = None
        self.timing.powerflow_s += _time.perf_counter() - t0
        self.iteration += 1
        self.iface_s = {}
        taps = (None if self.taps is None else  # the level's tap positions, once per solve
                dict(zip(self.taps.names, self.taps.position().tolist(), strict=True)))
        iface_s: dict[str, dict[str, complex]] = {eid: {} for eid in rt.grids}
        if rt.level == "D" and res is not None:  # the exchanges at the interface branches
            names, grids, rows = self._iface_index()
            p, q = res.p_from_mw[rows].tolist(), res.q_from_mvar[rows].tolist()
            for name, eid, p_mw, q_mvar in zip(names, grids, p, q, strict=True):
                iface_s[eid][name] = self.iface_s[name] = complex(p_mw, q_mvar)
        own = {eid: 0.0 if st["dp"] is None else st["dp"].schedule_mw  # providers' corrections
               for eid, st in self.state.items()}
        iteration = self.iteration

        def report(eid: str) -> GridReport:
            sl = rt.grids[eid]
            if res is None:
                vm, ld = np.full(len(sl.bus), np.nan), np.full(len(sl.branch), np.nan)
                pf, va = np.full(len(sl.branch), np.nan), np.full(len(sl.bus), np.nan)
            else:
                vm, ld = res.vm_pu[sl.bus], res.loading_percent[sl.branch]
                pf, va = res.p_from_mw[sl.branch], res.va_degree[sl.bus]
            return GridReport(
                eid, rt.level, time, vm, ld, pf, float(rt.imbalance[eid][k]) + own[eid],
                iface_s[eid], res is not None, iteration,
                None if cf is None else cf.vm_pu[sl.bus].copy(),
                None if cf is None else cf.loading_percent[sl.branch].copy(),
                self._tap_positions(sl, taps), va)

        # most loop iterations' reports are never read (the coordinator reads the D grids'
        # last ones when the T grid reports): each is made from this solve when first read
        self.reports = LazyReports(list(self.state), report)
        if rt.level == "T":
            self._loop_control(res)

    def _iface_index(self) -> tuple[list[str], list[str], np.ndarray]:
        """The D net's interfaces in grid order: names, grids and branch rows."""
        if self._iface_idx is None:
            grids = self.rt.grids.items()
            self._iface_idx = ([i.name for _, sl in grids for i in sl.interfaces],
                               [eid for eid, sl in grids for _ in sl.interfaces],
                               np.array([b for _, sl in grids for b in sl.iface_branch],
                                        dtype=np.int64))
        return self._iface_idx

    def _tapped_v_ref(self) -> np.ndarray:
        """The D slack voltages: the interface voltages scaled by the taps' moves."""
        v = self.v_hv.copy()
        v[self.taps.slack] = v[self.taps.slack] * self.taps.factor()
        return v

    def _tap_loading(self, res) -> None:
        """Interface transformer loadings of the last solve with the HV-side current at the
        true HV voltage: the taps scale the slack voltage (`simulators/taps.py`), which the
        model's HV-side current would otherwise be divided by; the LV side is exact."""
        if self.taps is None or res is None:
            return
        m = self.rt.model
        if self._iface_rows is None:  # the interface transformers' rows, fixed for the run
            rows = np.concatenate([sl.iface_branch for sl in self.rt.grids.values()])
            slack = np.concatenate([sl.iface_slack for sl in self.rt.grids.values()])
            self._iface_rows = (rows, slack, m.t_int[rows], m.yt_b[rows])
        rows, slack, t, yt = self._iface_rows
        v = m.v
        s_f = np.abs(res.p_from_mw[rows] + 1j * res.q_from_mvar[rows])
        i_f = s_f / (np.abs(self.v_hv[slack]) * m.branch_kv[rows, 0]) / np.sqrt(3.0)
        s_t = np.abs(v[t] * np.conj(yt @ v)) * m.base_mva
        i_t = s_t / (np.abs(v[t]) * m.branch_kv[rows, 1]) / np.sqrt(3.0)
        res.loading_percent[rows] = 100.0 * np.maximum(i_f / m.branch_limit_ka[rows, 0],
                                                       i_t / m.branch_limit_ka[rows, 1])

    def _tap_positions(self, sl: GridSlice, pos: dict[str, float] | None
                       ) -> dict[str, float] | None:
        """A grid's tap position per interface, from the level's (`pos`, None without taps)."""
        if pos is None:
            return None
        return {i.name: pos[i.name] for i in sl.interfaces}

    def _control_voltage(self, k: int, res):
        """The TSO's set-point control, before the market: shift the slack voltage so that
        the T buses come back inside the band less the margin (one correction; voltages move
        with the set-point almost one to one), within the allowed change."""
        sp = self.setpoint
        vm = np.concatenate([res.vm_pu[sl.bus] for sl in self.rt.grids.values()])
        vm = vm[np.isfinite(vm)]
        if not len(vm):
            return res
        over = vm.max() - (sp.vm_max_pu - sp.margin_pu)
        under = (sp.vm_min_pu + sp.margin_pu) - vm.min()
        if over > 0 and under < 0:
            change = -min(over, -under)  # lower, without pushing the lowest bus out
        elif under > 0 and over < 0:
            change = min(under, -over)
        else:
            return res
        change = float(np.clip(change, -sp.max_change_pu, sp.max_change_pu))
        mag = np.abs(self.v_ref0)
        v_ref = self.v_ref0 * (mag + change) / np.where(mag > 0, mag, 1.0)
        return self.rt.model.solve(*self._injections(k), v_ref=v_ref)

    def _loop_control(self, res) -> None:
        """Decide whether the D grids must solve again with new interface voltages.

        The loop has converged when no interface exchange moved by more than the tolerance
        since the previous iteration and the interface voltages did not move either.
        """
        moved = max((abs(s - self.last_s.get(n, np.inf)) for n, s in self.s_in.items()),
                    default=0.0)
        self.last_s = dict(self.s_in)
        self.v_out = None
        if res is None or self.iteration > self.max_iter:
            return
        v = self.rt.model.bus_voltage(self.rt.iface_hv_bus)
        v_new = {i.name: complex(v[j]) for j, i in enumerate(self.rt.interfaces)}
        dv = max((abs(v_new[n] - self.v_sent.get(n, np.inf)) for n in v_new), default=0.0)
        if moved < self.tol and dv < V_TOL_PU:
            return
        self.v_out = self.v_sent = v_new

    def get_data(self, outputs):
        out: dict = {}
        for attr in outputs.get(self.level, ()):
            if attr == "interface_s":
                out[attr] = self.iface_s
            elif attr == "interface_v" and self.v_out is not None:
                out[attr] = self.v_out
            elif attr == "report" and (self.level == "D" or self.v_out is None):
                out[attr] = self.reports
        return {self.level: out}


class LazyReports(Mapping):
    """A level's reports of one solve, grid -> `GridReport`, each made from that solve's
    result the first time it is read (and then kept: the same object on every read)."""

    def __init__(self, grids: list[str], make: Callable[[str], GridReport]) -> None:
        self._grids, self._make = grids, make
        self._made: dict[str, GridReport] = {}

    def __getitem__(self, grid: str) -> GridReport:
        rep = self._made.get(grid)
        if rep is None:
            if grid not in self._grids:
                raise KeyError(grid)
            rep = self._made[grid] = self._make(grid)
        return rep

    def __iter__(self) -> Iterator[str]:
        return iter(self._grids)

    def __len__(self) -> int:
        return len(self._grids)
