"""The D grids as the markets and the conflict rules see them: a linear model around the run's
first operating point, the D grids' state before a market, offer caps, and the D rows of an LP.

Every scheme that looks at distribution constraints (and the coordinator's conflict rules) uses
one `DGridView`; it holds no per-step state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from tsodso.coordination.bid import BidBook
from tsodso.coordination.dnetwork import DSensitivity
from tsodso.coordination.market import DRows, DState
from tsodso.coordination.need import GridLimits
from tsodso.coordination.pooling import ZonePools


@dataclass(frozen=True)
class DModel:
    """The D grids as the markets see them: sensitivities at the run's first operating point
    (rows: the D net's buses and branches; columns: resource buses), feeder zones and
    capabilities per slot."""

    sens: DSensitivity
    inj_col: dict[int, int]
    zone: np.ndarray
    capability: np.ndarray
    hv_dv: np.ndarray | None = None  # (D grids, slots): pu change of each D grid's interface
    #                                  voltage per MW activated up by each slot (T model)


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
    def _caps(self) -> dict[str, tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]]:
        """Per D grid: its D slots and how much each pushes every row towards its upper
        voltage, lower voltage and loading limit (positive parts of the sensitivities in the
        slot's direction), fixed for the run, for the offer caps."""
        sens = self.model.sens
        caps = {}
        for g in self.grids:
            slots = np.flatnonzero((self.book.grid == g) & self.is_d)
            d = self.book.direction[slots]
            cv = sens.dv_dp[self.bus[g]][:, self.cols[slots]] * d
            cl = sens.dl_dp[self.branch[g]][:, self.cols[slots]] * d
            pushes = [np.where(c >= 1e-7, c, 0.0) for c in (cv, -cv, cl)]
            caps[g] = (slots, pushes, [p > 0 for p in pushes])
        return caps

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
        dv_all = sens.dv_dp @ inj
        dl_all = sens.dl_dp @ inj
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
        for g, (slots, pushes, hits) in self._caps.items():
            offered = mw[slots]
            if not np.any(offered > 0):
                continue
            st = state[g]
            vm = np.nan_to_num(st.vm, nan=1.0)
            room_up = st.vm_max - vm
            room_dn = vm - st.vm_min
            room_l = st.loading_max - np.nan_to_num(st.loading)
            factor = np.ones(len(slots))
            for push, hit, room in zip(pushes, hits, (room_up, room_dn, room_l), strict=True):
                total = push @ offered
                room = np.maximum(room, 0.0)
                alpha = np.where(total > 0, np.minimum(room / np.maximum(total, 1e-12), 1.0),
                                 1.0)
                if no_worse:
                    alpha = np.where(room <= 0, 0.0, alpha)
                row_alpha = np.where(hit, alpha[:, None], 1.0)
                factor = np.minimum(factor, row_alpha.min(axis=0, initial=1.0))
            cap[slots] = offered * factor
        return cap

    def rows(self, pools: ZonePools) -> list[DRows]:
        """The D rows of an LP over `pools`: each grid's sensitivities pooled pro rata."""
        rows = []
        sens = self.model.sens
        cols = self.cols
        for k, g in enumerate(self.grids):
            slots = np.flatnonzero((self.book.grid == g) & self.is_d)
            ids, pos = np.unique(pools.pool_of[slots], return_inverse=True)
            w = sp.csr_matrix((pools.weights(slots), (np.arange(len(slots)), pos.ravel())),
                              shape=(len(slots), len(ids)))
            dv = np.asarray((w.T @ sens.dv_dp[self.bus[g]][:, cols[slots]].T).T)
            dl = np.asarray((w.T @ sens.dl_dp[self.branch[g]][:, cols[slots]].T).T)
            hv = None
            if self.model.hv_dv is not None:  # every pool moves this grid's interface voltage
                hv = self.model.hv_dv[k][pools.first]
            rows.append(DRows(g, ids, dv, dl, self.limits[g].rating_mva, hv))
        return rows
