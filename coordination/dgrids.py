"""The D grids as the markets and the conflict rules see them: a linear model that follows the
operating point, the D grids' state before a market, offer caps, and the D rows of an LP.

Every scheme that looks at distribution constraints (and the coordinator's conflict rules) uses
one `DGridView`. Its sensitivities start at the run's first operating point; before each
clearing `refresh` re-linearises every D grid whose reported AC state (voltage magnitudes and
angles, loadings) has moved from the point its sensitivities were taken at by more than
`refresh_vm_pu` on any bus or `refresh_loading_percent` on any branch: one Jacobian LU of that
grid's island at the reported state (`coordination.dnetwork.sensitivity_blocks`, written
block by block into the model: the other grids' blocks are not touched). The markets then
write the refreshed coefficients into their LPs (`FlexMarket.update_drows`, in place from a
grid's second refresh on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from tsodso.coordination.bid import BidBook
from tsodso.coordination.dnetwork import DSensitivity, internal_voltage, sensitivity_blocks
from tsodso.coordination.market import DRows, DState
from tsodso.coordination.need import GridLimits
from tsodso.coordination.pooling import ZonePools
from tsodso.core.powerflow import GridModel

#: Re-linearise a D grid when a bus voltage moved by more than this since its linearisation
#: point (pu) ...
REFRESH_VM_PU = 0.01
#: ... or a branch loading by more than this (percentage points).
REFRESH_LOADING_PERCENT = 20.0


@dataclass(frozen=True)
class DModel:
    """The D grids as the markets see them: sensitivities (rows: the D net's buses and
    branches; columns: resource buses) at the run's first operating point, refreshed in place
    by `DGridView.refresh`, feeder zones and capabilities per slot."""

    sens: DSensitivity
    inj_col: dict[int, int]
    zone: np.ndarray
    capability: np.ndarray
    hv_dv: np.ndarray | None = None  # (D grids, slots): pu change of each D grid's interface
    #                                  voltage per MW activated up by each slot (T model)
    grid_model: GridModel | None = None  # the D net's admittances and Jacobian pattern; None:
    #                                      the sensitivities stay fixed
    v0: np.ndarray | None = None  # complex internal bus voltages of the first operating point
    vm0: np.ndarray | None = None  # (D net buses,) |V| there
    loading0: np.ndarray | None = None  # (D net branches,) loading percent there


@dataclass(frozen=True)
class DGridView:
    """What is fixed for a run about the D grids: the model, where each grid's buses and
    branches sit in it, their limits and the market's safety margins."""

    book: BidBook
    slot_bus: np.ndarray  # bus of each slot in its own grid (-1: none)
    model: DModel
    grids: tuple[str, ...]  # the DSO grids, in run order
    bus: dict[str, np.ndarray]  # grid -> positions of its buses in the D model's rows
    branch: dict[str, np.ndarray]  # grid -> positions of its branches
    limits: dict[str, GridLimits]
    voltage_margin_pu: float = 0.0
    loading_margin_percent: float = 0.0
    refresh_vm_pu: float = REFRESH_VM_PU
    refresh_loading_percent: float = REFRESH_LOADING_PERCENT
    # per grid: |V| and loadings where its sensitivities were last taken; counts of refreshes
    lin: dict = field(default_factory=dict, compare=False, repr=False)
    n_refresh: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def is_d(self) -> np.ndarray:
        return self.book.level == "D"

    @cached_property
    def cols(self) -> np.ndarray:
        """Sensitivity column of each slot (-1: a T slot)."""
        inj = self.model.inj_col
        return np.array([inj.get(int(b), -1) if d else -1
                         for b, d in zip(self.slot_bus, self.is_d, strict=True)])

    @cached_property
    def _caps(self) -> dict[str, tuple[np.ndarray, list[np.ndarray],
                                       tuple[np.ndarray, np.ndarray]]]:
        """Per D grid: its D slots and how much each pushes every row towards its upper
        voltage, lower voltage and loading limit (positive parts of the sensitivities in the
        slot's direction), for the offer caps; a grid `refresh` re-linearises is dropped and
        renewed at the next `deliverable` (schemes without offer caps never build them).
        The third item marks the rows of the three kinds (end to end) that each (column,
        direction) pair pushes, and each slot's pair."""
        return {}

    def _cap(self, g: str) -> tuple[np.ndarray, list[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        sens = self.model.sens
        slots = np.flatnonzero((self.book.grid == g) & self.is_d)
        d = self.book.direction[slots]
        cv = sens.dv_dp[self.bus[g]][:, self.cols[slots]] * d
        cl = sens.dl_dp[self.branch[g]][:, self.cols[slots]] * d
        pushes = [np.where(c >= 1e-7, c, 0.0) for c in (cv, -cv, cl)]
        # which rows a slot pushes depends only on its column and direction: one row of
        # `hits` per such pair (about half as many as slots), `of` maps the slots to them
        _, first, of = np.unique(np.stack([self.cols[slots], d]), axis=1, return_index=True,
                                 return_inverse=True)
        hits = np.ascontiguousarray(np.vstack([p[:, first] > 0 for p in pushes]).T)
        return slots, pushes, (hits, of.ravel())

    @cached_property
    def _grid_cols(self) -> dict[str, np.ndarray]:
        """Per D grid: the sensitivity columns (resource buses) inside it."""
        bus_index = self.model.grid_model.bus_index
        inj = self.model.inj_col
        return {g: np.array(sorted(inj[int(b)] for b in bus_index[self.bus[g]]
                                   if int(b) in inj), dtype=np.int64) for g in self.grids}

    def stale(self, reports: dict) -> list[str]:
        """The D grids whose reported state moved from their linearisation point by more than
        the refresh tolerances (grids without a power-flow solution are left as they are)."""
        m = self.model
        out = []
        for g in self.grids:
            rep = reports.get(g)
            if rep is None or getattr(rep, "va_degree", None) is None or not rep.converged:
                continue
            vm_lin, ld_lin = self.lin.get(g, (m.vm0[self.bus[g]], m.loading0[self.branch[g]]))
            dv = np.nanmax(np.abs(rep.vm_pu - vm_lin), initial=0.0)
            dl = np.nanmax(np.abs(rep.loading_percent - ld_lin), initial=0.0)
            if dv > self.refresh_vm_pu or dl > self.refresh_loading_percent:
                out.append(g)
        return out

    def refresh(self, reports: dict) -> list[str]:
        """Re-linearise the stale D grids (see `stale`) at their reported AC state: their
        blocks of the sensitivities, their offer caps and linearisation points are renewed.
        Returns the grids refreshed (markets must then rewrite those grids' D rows)."""
        m = self.model
        if m.grid_model is None:
            return []
        grids = self.stale(reports)
        if not grids:
            return []
        gm = m.grid_model
        # one call for all grids: their buses are disjoint, and the auxiliary buses' voltages
        # (solved from all mapped buses) come out as after the last of one call per grid
        bus = np.concatenate([self.bus[g] for g in grids])
        v = internal_voltage(gm, bus, np.concatenate([reports[g].vm_pu for g in grids]),
                             np.concatenate([reports[g].va_degree for g in grids]), m.v0)
        branch = np.concatenate([self.branch[g] for g in grids])
        cols = np.concatenate([self._grid_cols[g] for g in grids])
        # island by island: the blocks of other islands (grids) are 0 and stay so
        for rows, at, dv, br, dl in sensitivity_blocks(gm, m.sens.inj_bus[cols], bus, branch,
                                                      v):
            m.sens.dv_dp[np.ix_(bus[rows], cols[at])] = dv
            if len(br):
                m.sens.dl_dp[np.ix_(branch[br], cols[at])] = dl
        for g in grids:
            rep = reports[g]
            self.lin[g] = (np.asarray(rep.vm_pu).copy(), np.asarray(rep.loading_percent).copy())
            self.__dict__.get("_caps", {}).pop(g, None)  # renewed when next needed
            self.n_refresh[g] = self.n_refresh.get(g, 0) + 1
        return grids

    def state(self, reports: dict) -> dict[str, DState]:
        """D grids before the market, with the limits the markets aim at: the real limits
        tightened by the scenario's margins, which absorb the linear model's error."""
        out = {}
        for g in self.grids:
            lim = self.limits[g]
            out[g] = DState(reports[g].vm_pu, reports[g].loading_percent,
                            lim.vm_min_pu + self.voltage_margin_pu,
                            lim.vm_max_pu - self.voltage_margin_pu,
                            lim.loading_max_percent - self.loading_margin_percent)
        return out

    def effects(self, signed_mw: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Linear change of every D grid's voltages and loadings from signed MW per slot
        (up = +): each grid's own sensitivities plus the move of its interface voltage."""
        cols = self.cols
        mine = np.flatnonzero(self.is_d & (signed_mw != 0))
        inj = np.zeros(len(self.model.inj_col))
        np.add.at(inj, cols[mine], signed_mw[mine])
        sens = self.model.sens
        # only the columns with an injection: the others add exact zeros, and the dense
        # products over all ~1,600 columns (~45 MB of sensitivities) cost ~10 ms a step
        nz = np.flatnonzero(inj)
        dv_all = sens.dv_dp[:, nz] @ inj[nz]
        dl_all = sens.dl_dp[:, nz] @ inj[nz]
        hv = (self.model.hv_dv @ signed_mw if self.model.hv_dv is not None
              else np.zeros(len(self.grids)))
        return {g: (dv_all[self.bus[g]] + hv[k], dl_all[self.branch[g]])
                for k, g in enumerate(self.grids)}

    def effect(self, grid: str, signed_mw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear change of one D grid's voltages and loadings from signed MW per slot, from
        that grid's resources and the move of its interface voltage."""
        own = np.where(self.book.grid == grid, signed_mw, 0.0)
        dv, dl = self.effects(own)[grid]
        if self.model.hv_dv is not None:  # other grids' and T activations move the interface
            k = self.grids.index(grid)
            dv = dv + float(self.model.hv_dv[k] @ (signed_mw - own))
        return dv, dl

    def after(self, state: dict[str, DState], signed_mw: np.ndarray) -> dict[str, DState]:
        """The D grids' state after activating `signed_mw` per slot, on the linear model."""
        out = {}
        effects = self.effects(signed_mw)
        for g, st in state.items():
            dv, dl = effects[g]
            out[g] = DState(st.vm + dv, st.loading + dl, st.vm_min, st.vm_max, st.loading_max)
        return out

    def deliverable(self, mw: np.ndarray, state: dict[str, DState],
                    no_worse: bool) -> np.ndarray:
        """Cap D offers so that activating any of them together keeps the D grids within
        limits on the linear model (`no_worse`: no new or worse violation).

        Per row, the MW that could push it towards its limit (positive parts) is scaled down
        to the row's headroom; each slot keeps the smallest factor of the rows it pushes.
        """
        cap = mw.copy()
        caps = self._caps
        for g in self.grids:
            if g not in caps:
                caps[g] = self._cap(g)
            slots, pushes, hits = caps[g]
            offered = mw[slots]
            if not np.any(offered > 0):
                continue
            st = state[g]
            vm = np.nan_to_num(st.vm, nan=1.0)
            room_up = st.vm_max - vm
            room_dn = vm - st.vm_min
            room_l = st.loading_max - np.nan_to_num(st.loading)
            alphas = []
            for push, room in zip(pushes, (room_up, room_dn, room_l), strict=True):
                total = push @ offered
                room = np.maximum(room, 0.0)
                alpha = np.where(total > 0, np.minimum(room / np.maximum(total, 1e-12), 1.0),
                                 1.0)
                if no_worse:
                    alpha = np.where(room <= 0, 0.0, alpha)
                alphas.append(alpha)
            hit, of = hits
            cap[slots] = offered * _smallest_hit(hit, np.concatenate(alphas))[of]
        return cap

    def rows(self, pools: ZonePools, grids: list[str] | None = None) -> list[DRows]:
        """The D rows of an LP over `pools` (of `grids`, default all): each grid's current
        sensitivities pooled pro rata to the members' capabilities."""
        rows = []
        sens = self.model.sens
        for k, g in enumerate(self.grids):
            if grids is not None and g not in grids:
                continue
            ids, wt, cols = self._pooling(pools, g)
            dv = np.asarray((wt @ sens.dv_dp[self.bus[g]][:, cols].T).T)
            dl = np.asarray((wt @ sens.dl_dp[self.branch[g]][:, cols].T).T)
            hv = None
            if self.model.hv_dv is not None:  # every pool moves this grid's interface voltage
                hv = self.model.hv_dv[k][pools.first]
            rows.append(DRows(g, ids, dv, dl, self.limits[g].rating_mva, hv))
        return rows

    def _pooling(self, pools: ZonePools, g: str) -> tuple[np.ndarray, sp.csc_matrix,
                                                          np.ndarray]:
        """Grid `g`'s pools in `pools`, the (pools, slots) weights that pool its D slots and
        those slots' sensitivity columns; fixed for the run, so kept per pools object (the
        refreshes pool them again and again)."""
        cache = self.__dict__.setdefault("_pooling_cache", {})
        key = (id(pools), g)
        if key not in cache or cache[key][0] is not pools:
            slots = np.flatnonzero((self.book.grid == g) & self.is_d)
            ids, pos = np.unique(pools.pool_of[slots], return_inverse=True)
            w = sp.csr_matrix((pools.weights(slots), (np.arange(len(slots)), pos.ravel())),
                              shape=(len(slots), len(ids)))
            cache[key] = (pools, ids, w.T, self.cols[slots])
        return cache[key][1:]


def _smallest_hit(hits: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per row of `hits` (bool, (pushers, rows)), the smallest `alpha` (<= 1) of the rows it
    hits, 1 if none; only the rows that scale (alpha < 1) are looked at."""
    tight = np.flatnonzero(alpha < 1.0)
    if len(tight) == 0:
        return np.ones(hits.shape[0])
    return np.where(hits[:, tight], alpha[tight], 1.0).min(axis=1, initial=1.0)
