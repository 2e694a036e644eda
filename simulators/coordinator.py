"""mosaik simulator of the coordinator: needs and bids in, activations out, costs recorded.

In each step it first sees the grids' state before activations (the T grid reports once the
T-D loop has converged), assesses the needs, lets the scheme clear and sends the activations to
the providers (weak connection: same step). After the grids have run with the activations it
sees their final state, prices what stays violated, settles every activation, and passes the
step's record to the recorder.
"""

from __future__ import annotations

import time as _time

import mosaik_api_v3
import numpy as np
from tsodso.coordination.conflicts import StepView, detect
from tsodso.coordination.need import Assessor, unserved, unserved_value
from tsodso.core.records import Event, StepRecord
from tsodso.core.vocabulary import COST_KEYS, DSO_PREFIX, TSO, buyer_side
from tsodso.simulators.flexibility import Dispatch
from tsodso.simulators.timing import Timing

# Only the T grid's report triggers a step: it comes once the T-D loop has converged, before
# and after the market. The offers (`bids`) and the D grids' reports (`d_report`, one per loop
# iteration) are read when that step comes (mosaik delivers the latest of each), so the
# coordinator does not step once per loop iteration. Reports arrive per level, grid ->
# `GridReport` (simulators/grid.py). A hybrid simulator, since an event-based
# one may not have non-trigger inputs; its outputs are events (not persistent).
META = {
    "api_version": "3.0",
    "type": "hybrid",
    "models": {"Coordinator": {"public": True, "params": [],
                               "attrs": ["bids", "report", "d_report", "activations", "record"],
                               "trigger": ["report"],
                               "non-persistent": ["activations", "record"]}},
}


class CoordinatorSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.out: dict = {}

    def init(self, sid, time_resolution=1.0, ctx=None, timing: Timing | None = None):
        self.ctx = ctx
        self.timing = timing or Timing()
        self.step_s = ctx.step_s
        self.step_h = ctx.step_s / 3600.0
        self.scheme = ctx.scheme
        self.book = self.scheme.book  # the run's slots; this step's offers arrive as `bids`
        self.dgrids = ctx.market.distribution
        self.reports: dict = {}
        self.cleared_at = -1
        self.pending = None
        self.slot_of = {r: i for i, r in enumerate(self.book.resource.tolist())}
        self.dso_pos = {g: i for i, g in enumerate(ctx.dso_grids)}
        self.assess = Assessor(ctx.limits)
        self.d_limits = {g: (ctx.limits[g].vm_min_pu, ctx.limits[g].vm_max_pu,
                             ctx.limits[g].loading_max_percent) for g in ctx.dso_grids}
        return self.meta

    def create(self, num, model):
        return [{"eid": "coordinator", "type": model}]

    def step(self, time, inputs, max_advance):
        data = inputs.get("coordinator", {})
        for offers in data.get("bids", {}).values():
            if offers is not None:
                self.book.update(offers.mw, offers.price)
        for reps in data.get("d_report", {}).values():  # grid -> GridReport
            if reps is not None:
                self.reports.update(reps)
        t_report = False
        for reps in data.get("report", {}).values():
            if reps is not None:
                self.reports.update(reps)
                t_report = True
        self.out = {}
        if not t_report:
            return None
        k = time // self.step_s
        if self.cleared_at != time:
            self._clear(k, time)
        else:
            self.out = {"record": self._record(k)}
        return None

    def _clear(self, k: int, time: int) -> None:
        needs = self.assess(k, self.reports)
        t0 = _time.perf_counter()
        self.scheme.relinearise(self.reports)  # part of the clearing's cost
        outcome = self.scheme.clear(needs, dict(self.reports))
        self.timing.clearing_s += _time.perf_counter() - t0
        tso_mw, tso_net = self._tso_d(outcome)
        self.pending = (needs, outcome, self.book.mw.copy(), self._grid_events("before"),
                        tso_net)
        self.cleared_at = time
        self.out = {}
        if np.any(outcome.activated != 0):  # none: the providers settle the step themselves
            self.out["activations"] = Dispatch(outcome.activated,
                                               self._without_tso_d(outcome, tso_mw))
        if not np.any(outcome.activated > 1e-6):  # the grids stay as they are: record now
            self.out["record"] = self._record(k)

    def _tso_d(self, outcome) -> tuple[np.ndarray, np.ndarray]:
        """The TSO's activations of D-connected resources per slot: MW, and MW signed by
        direction (+ = up), each summed in activation order from 0.0 (the sums are kept in
        Python floats per touched slot, not as numpy element updates, then written once)."""
        mw: dict[int, float] = {}
        net: dict[int, float] = {}
        slot = self.slot_of
        for a in outcome.activations:
            if a.buyer == TSO and a.level == "D":
                i = slot[a.resource]
                mw[i] = mw.get(i, 0.0) + a.mw
                net[i] = net.get(i, 0.0) + a.direction * a.mw
        return self._per_slot(mw), self._per_slot(net)

    def _per_slot(self, values: dict[int, float]) -> np.ndarray:
        """An array over the book's slots: `values` at their slots, 0.0 elsewhere."""
        out = np.zeros(len(self.book))
        if values:
            out[list(values)] = list(values.values())
        return out

    def _without_tso_d(self, outcome, tso: np.ndarray) -> np.ndarray | None:
        """The activations without the TSO's activations of D-connected resources (`tso`,
        MW per slot; None if it made none): the D grids' counterfactual for the conflict
        rules."""
        if not np.any(tso > 1e-6):
            return None
        return np.maximum(outcome.activated - tso, 0.0)

    def _record(self, k: int) -> StepRecord:
        ctx = self.ctx
        needs, outcome, _, events, _ = self.pending
        acts = outcome.activations
        costs = dict.fromkeys(COST_KEYS, 0.0)
        by_grid = np.zeros(len(ctx.dso_grids))
        for a in acts:  # payments (transfers) by buyer side, and the resource cost (social)
            side = buyer_side(a.buyer)
            costs[side] += a.cost
            costs["resource"] += a.bid_price * a.mw * self.step_h
            if side == "dso":
                by_grid[self.dso_pos[a.buyer[len(DSO_PREFIX):]]] += a.cost
        for key, value in outcome.transfers.items():
            costs[key] += value
        after = self.assess(k, self.reports)
        left = unserved(after, outcome.unserved_mw, ctx.level, self.step_h)
        costs.update(unserved_value(left, ctx.scenario.penalties))
        conflicts = detect(self._view(needs, outcome))
        reps = self.reports
        iface_s = np.array([reps[i.grid].interface_s.get(i.name, np.nan)
                            for i in ctx.interfaces], dtype=complex)
        return StepRecord(
            step=k,
            vm_pu={g: reps[g].vm_pu for g in ctx.grid_order},
            loading_percent={g: reps[g].loading_percent for g in ctx.grid_order},
            interface_p_mw=iface_s.real, interface_q_mvar=iface_s.imag,
            tso_imbalance_mw=needs.imbalance_mw,
            unresolved_imbalance_mw=float(outcome.unserved_mw),
            activations=acts, conflicts=conflicts, costs=costs,
            dso_cost_by_grid=by_grid, unserved=left,
            events=self._events(events, outcome.unserved_mw),
            interface_tap_pos=np.array([(reps[i.grid].tap_pos or {}).get(i.name, np.nan)
                                        for i in ctx.interfaces], dtype=float))

    def _grid_events(self, when: str) -> list[Event]:
        """Power flows without solution in the grids' current reports."""
        return [Event("powerflow_not_converged", g,
                      f"no AC power-flow solution {when} the market; its state counts as unknown"
                      + ("" if when == "before" else " (NaN in the file)"))
                for g in self.ctx.grid_order if not self.reports[g].converged]

    def _events(self, before: list[Event], unserved_mw: float) -> list[Event]:
        """The step's events: power flows without solution (before and after the market),
        the T-D coupling loop stopped at its iteration limit, a market ending on its slack."""
        events = before + self._grid_events("after")
        limit = self.ctx.scenario.coupling.max_iterations
        t_iter = max(r.iterations for r in self.reports.values() if r.level == "T")
        if t_iter > limit:
            events.append(Event("coupling_iteration_limit", "",
                                f"T-D loop stopped at its limit of {limit} iterations "
                                "without converging; the last iteration's state is used"))
        if abs(unserved_mw) > 1e-6:
            events.append(Event("market_slack", "",
                                f"market ended on its slack: {unserved_mw:+.3f} MW of imbalance "
                                "left unserved (priced as imbalance cost)"))
        return events

    def _view(self, needs, outcome) -> StepView:
        """What the conflict rules need: activations, offers, the D grids after the market,
        and the D grids without the TSO's activations there (the AC counterfactual the D grid
        simulator solved; the linear estimate only where that power flow failed)."""
        ctx = self.ctx
        offered, tso = self.pending[2], self.pending[4]  # tso: signed MW per slot
        slot = self.slot_of
        reps = self.reports
        vm_cf = {g: reps[g].vm_without_tso for g in ctx.dso_grids
                 if reps[g].vm_without_tso is not None}
        ld_cf = {g: reps[g].loading_without_tso for g in ctx.dso_grids
                 if reps[g].loading_without_tso is not None}
        dv: dict = {}
        dl: dict = {}
        if np.any(tso != 0) and len(vm_cf) < len(ctx.dso_grids):
            # the counterfactual power flow is missing (did not converge): the linear estimate
            effects = self.dgrids.effects(tso)
            dv = {g: e[0] for g, e in effects.items()}
            dl = {g: e[1] for g, e in effects.items()}
        # MW offered per activated resource (the rules read no other; an id without a slot
        # is left out and counts as 0 MW offered): not a dict of every slot each step
        offered_mw = {a.resource: float(offered[slot[a.resource]])
                      for a in outcome.activations if a.resource in slot}
        return StepView(
            activations=outcome.activations, dso_grids=ctx.dso_grids,
            offered_mw=offered_mw,
            vm_after={g: self.reports[g].vm_pu for g in ctx.dso_grids},
            loading_after={g: self.reports[g].loading_percent for g in ctx.dso_grids},
            dv_tso=dv, dl_tso=dl,
            limits=self.d_limits,
            area_imbalance_mw=needs.area_imbalance,
            schedule_tolerance_mw=ctx.scenario.market.schedule_tolerance_mw,
            dso_balances_area=self.scheme.dso_balances_area,
            joint_balance=self.scheme.joint_balance,
            vm_without_tso=vm_cf, loading_without_tso=ld_cf)

    def get_data(self, outputs):
        return {"coordinator": {a: self.out[a] for a in outputs.get("coordinator", [])
                                if a in self.out}}

