"""Coordination schemes: who buys which flexibility, in which market, under which constraints.

Each scheme turns the step's bid book and needs into an `Outcome`: MW activated per bid slot,
the buyer of each slot and the price paid, and the balancing need left unserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from tsodso.coordination.bid import BidBook
from tsodso.coordination.centralized import CentralizedMarket, Penalties
from tsodso.coordination.dnetwork import DSensitivity
from tsodso.coordination.market import DRows, DState, FlexMarket
from tsodso.coordination.need import Needs
from tsodso.coordination.pooling import Pools, ZonePools
from tsodso.coordination.settlement import settle
from tsodso.core.records import Activation

SCHEMES = ("none", "centralized", "local", "shared_balancing", "common", "integrated")


@dataclass
class Outcome:
    activated: np.ndarray  # MW per slot (all buyers together)
    activations: list[Activation]  # settled: who bought what, at which price
    unserved_mw: float  # signed balancing need left unserved


@dataclass
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


@dataclass
class TransmissionModel:
    """What the TSO's market knows of its grid: PTDFs and branch limits in PTDF row order."""

    ptdf: np.ndarray  # (rows, PTDF columns)
    rows_of_report: np.ndarray  # PTDF row -> position in the T grid's branch results
    limit_mw: np.ndarray  # per PTDF row
    bus: np.ndarray | None = None  # pandapower bus of each PTDF column


class Scheme:
    """Shared machinery: the book, penalties, settlement, D state and D caps."""

    name = ""

    def __init__(self, ctx):
        self.ctx = ctx
        self.book: BidBook = ctx.portfolio.book
        self.step_h = ctx.step_s / 3600.0
        pen = ctx.scenario.penalties
        self.penalties = Penalties(pen.imbalance_eur_per_mwh, pen.overload_eur_per_mwh)
        self.pen = pen
        self.pricing = ctx.scenario.market.pricing
        self.is_d = self.book.level == "D"
        self.tm: TransmissionModel = ctx.tmodel
        self.dm: DModel = ctx.dmodel
        self.cols = np.array([self.dm.inj_col.get(int(b), -1) if d else -1
                              for b, d in zip(ctx.portfolio.slot_bus, self.is_d, strict=True)])

    # --- helpers ----------------------------------------------------------------------
    def t_flow(self, reports: dict) -> np.ndarray:
        return reports[self.ctx.t_name].p_from_mw[self.tm.rows_of_report]

    def d_state(self, reports: dict) -> dict[str, DState]:
        """D grids before the market, with the limits the markets aim at: the real limits
        tightened by the scenario's margins, which absorb the linear model's error."""
        mk = self.ctx.scenario.market
        out = {}
        for g in self.ctx.dso_grids:
            lim = self.ctx.limits[g]
            out[g] = DState(reports[g].vm_pu, reports[g].loading_percent,
                            lim.vm_min_pu + mk.voltage_margin_pu,
                            lim.vm_max_pu - mk.voltage_margin_pu,
                            lim.loading_max_percent - mk.loading_margin_percent)
        return out

    def d_effects(self, signed_mw: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Linear change of every D grid's voltages and loadings from signed MW per slot
        (up = +): each grid's own sensitivities plus the move of its interface voltage."""
        mine = np.flatnonzero(self.is_d & (signed_mw != 0))
        inj = np.zeros(len(self.dm.inj_col))
        np.add.at(inj, self.cols[mine], signed_mw[mine])
        sens = self.dm.sens
        dv_all = sens.dv_dp @ inj
        dl_all = sens.dl_dp @ inj
        hv = (self.dm.hv_dv @ signed_mw if self.dm.hv_dv is not None
              else np.zeros(len(self.ctx.dso_grids)))
        out = {}
        for k, g in enumerate(self.ctx.dso_grids):
            sl = self.ctx.levels["D"].grids[g]
            out[g] = (dv_all[sl.bus] + hv[k], dl_all[sl.branch])
        return out

    def d_effect(self, grid: str, signed_mw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear change of one D grid's voltages and loadings from signed MW per slot, from
        that grid's resources and the move of its interface voltage."""
        own = np.where(self.book.grid == grid, signed_mw, 0.0)
        dv, dl = self.d_effects(own)[grid]
        if self.dm.hv_dv is not None:  # other grids' and T activations move the interface
            k = self.ctx.dso_grids.index(grid)
            dv = dv + float(self.dm.hv_dv[k] @ (signed_mw - own))
        return dv, dl

    def _cap_coefficients(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per D grid: its D slots and how much each pushes every row towards its upper
        voltage, lower voltage and loading limit (positive parts of the sensitivities in the
        slot's direction), fixed for the run, for the offer caps."""
        if not hasattr(self, "_caps"):
            sens = self.dm.sens
            self._caps = {}
            for g in self.ctx.dso_grids:
                slots = np.flatnonzero((self.book.grid == g) & self.is_d)
                sl = self.ctx.levels["D"].grids[g]
                d = self.book.direction[slots]
                cv = sens.dv_dp[sl.bus][:, self.cols[slots]] * d
                cl = sens.dl_dp[sl.branch][:, self.cols[slots]] * d
                pushes = [np.where(c >= 1e-7, c, 0.0) for c in (cv, -cv, cl)]
                self._caps[g] = (slots, pushes, [p > 0 for p in pushes])
        return self._caps

    def deliverable(self, mw: np.ndarray, state: dict[str, DState],
                    no_worse: bool) -> np.ndarray:
        """Cap D offers so that activating any of them together keeps the D grids within
        limits on the linear model (`no_worse`: no new or worse violation).

        Per row, the MW that could push it towards its limit (positive parts) is scaled down
        to the row's headroom; each slot keeps the smallest factor of the rows it pushes.
        """
        cap = mw.copy()
        for g, (slots, pushes, hits) in self._cap_coefficients().items():
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

    def settle_stage(self, x: np.ndarray, buyer: np.ndarray | str,
                     value: np.ndarray | None) -> list[Activation]:
        """Activations of one market stage. Pay-as-clear pays each slot the locational value
        of its pool in that market (its price minus its reduced cost: the clearing price at
        its location and in its direction, congestion included)."""

        class _C:
            activated = x
            marginal_price = (self.book.direction * value if value is not None
                              else np.zeros(len(x)))

        return settle(self.book, _C, buyer, self.pricing, self.step_h)

    def d_markets(self, areas: bool) -> tuple[ZonePools, FlexMarket]:
        pools = ZonePools(self.book, self.dm.zone, self.dm.capability)
        rows = self.d_rows(pools)
        area = {f"DSO:{r.grid}": r.pools for r in rows} if areas else None
        market = FlexMarket(pools.direction, np.full(pools.n, -1), self.step_h,
                            self.pen.imbalance_eur_per_mwh, self.pen.overload_eur_per_mwh,
                            self.pen.voltage_eur_per_bus_h, drows=rows, areas=area)
        return pools, market

    def d_rows(self, pools: ZonePools) -> list[DRows]:
        rows = []
        sens = self.dm.sens
        for g in self.ctx.dso_grids:
            slots = np.flatnonzero((self.book.grid == g) & self.is_d)
            ids, pos = np.unique(pools.pool_of[slots], return_inverse=True)
            w = sp.csr_matrix((pools.weights(slots), (np.arange(len(slots)), pos.ravel())),
                              shape=(len(slots), len(ids)))
            sl = self.ctx.levels["D"].grids[g]
            dv = np.asarray((w.T @ sens.dv_dp[sl.bus][:, self.cols[slots]].T).T)
            dl = np.asarray((w.T @ sens.dl_dp[sl.branch][:, self.cols[slots]].T).T)
            hv = None
            if self.dm.hv_dv is not None:  # every pool moves this grid's interface voltage
                hv = self.dm.hv_dv[self.ctx.dso_grids.index(g)][pools.first]
            rows.append(DRows(g, ids, dv, dl, self.ctx.limits[g].rating_mva, hv))
        return rows

    def dso_first(self, needs: Needs, reports: dict, state: dict[str, DState]):
        """The DSOs' local markets (their D bids against their D constraints), and what they
        leave for the next market: the TSO's need and T flows moved by the DSOs' activations,
        the D grids after them (linear model), the D offers left, and the DSOs' activations.
        """
        book = self.book
        d_mw = np.where(self.is_d, book.mw, 0.0)
        r1 = self.dmarket.clear(self.dpools.offered(d_mw, book.price), self.dpools.price,
                                d_state=state)
        x1 = self.dpools.split(r1.x, d_mw)
        signed1 = book.direction * x1
        need = needs.tso_need_mw - float(signed1.sum())
        flow0 = self.t_flow(reports) + self.tm.ptdf[:, book.t_bus] @ signed1
        after = {}
        effects = self.d_effects(signed1)
        for g, st in state.items():
            dv, dl = effects[g]
            after[g] = DState(st.vm + dv, st.loading + dl, st.vm_min, st.vm_max,
                              st.loading_max)
        acts = self.settle_stage(x1, self.dso_buyers(), r1.value[self.dpools.pool_of])
        return x1, need, flow0, after, np.maximum(book.mw - x1, 0.0), acts

    def dso_buyers(self) -> np.ndarray:
        """The DSO of each slot's grid, as a buyer name."""
        if not hasattr(self, "_dso_buyers"):
            self._dso_buyers = np.array([f"DSO:{g}" for g in self.book.grid], dtype=object)
        return self._dso_buyers


class NoCoordination(Scheme):
    """No market: nothing is activated; imbalance and violations stay (the counterfactual)."""

    name = "none"

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        return Outcome(np.zeros(len(self.book)), [], needs.tso_need_mw)


class Centralized(Scheme):
    """The TSO buys from T and D resources in one market with T constraints (PTDF); D grids
    are ignored unless the DSOs prequalify D bids (`market.prequalification`): then D offers
    are capped to what the D grids can take without violating their limits."""

    name = "centralized"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.pools = Pools(self.book)
        self.market = CentralizedMarket(self.pools.book, self.tm.ptdf, self.penalties,
                                        self.step_h)
        self.prequalify = ctx.scenario.market.prequalification

    def tso_stage(self, mw: np.ndarray, need: float, flow0: np.ndarray):
        pooled, price = self.pools.offered(mw, self.book.price)
        res = self.market.clear(pooled, price, need, flow0, self.tm.limit_mw,
                                exact_prices=self.pricing == "pay_as_clear")
        res.activated = self.pools.split(res.activated, mw)
        res.marginal_price = self.book.direction * res.value[self.pools.pool_of]
        return res

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        mw = self.book.mw.copy()
        if self.prequalify:
            mw = self.deliverable(mw, self.d_state(reports), no_worse=False)
        res = self.tso_stage(mw, needs.tso_need_mw, self.t_flow(reports))
        acts = settle(self.book, res, "TSO", self.pricing, self.step_h)
        return Outcome(res.activated, acts, res.unserved_mw)


class Local(Centralized):
    """Each DSO first clears its own needs in its local market (its D bids, its D constraints);
    what is left of the D bids goes to the TSO's market, aggregated per interface and capped to
    what the D grid can carry without new violations; the TSO then clears its need (which now
    includes the balance the DSOs' activations moved) with T bids and those offers."""

    name = "local"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.prequalify = False
        self.dpools, self.dmarket = self.d_markets(areas=False)

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        book = self.book
        x1, need, flow0, after, residual, acts = self.dso_first(needs, reports,
                                                                self.d_state(reports))
        offers = np.where(self.is_d, self.deliverable(residual, after, no_worse=True), residual)
        res = self.tso_stage(offers, need, flow0)
        acts += settle(book, res, "TSO", self.pricing, self.step_h)
        return Outcome(x1 + res.activated, acts, res.unserved_mw)


class SharedBalancing(Centralized):
    """Each DSO keeps its interface on the agreed schedule (the forecast exchange: it balances
    its area's forecast errors) and solves its congestion with its own D bids; the TSO balances
    the T-connected assets with T bids. Both markets clear at the same time, independently."""

    name = "shared_balancing"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.prequalify = False
        self.dpools, self.dmarket = self.d_markets(areas=True)

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        book = self.book
        d_mw = np.where(self.is_d, book.mw, 0.0)
        area_need = {f"DSO:{g}": -needs.area_imbalance.get(g, 0.0) for g in self.ctx.dso_grids}
        r1 = self.dmarket.clear(self.dpools.offered(d_mw, book.price), self.dpools.price,
                                need=area_need, d_state=self.d_state(reports))
        x1 = self.dpools.split(r1.x, d_mw)
        t_need = -needs.area_imbalance.get(self.ctx.t_name, 0.0)
        res = self.tso_stage(np.where(self.is_d, 0.0, book.mw), t_need, self.t_flow(reports))
        acts = []
        for g in self.ctx.dso_grids:
            mine = np.where(book.grid == g, x1, 0.0)
            acts += self.settle_stage(mine, f"DSO:{g}", r1.value[self.dpools.pool_of])
        acts += settle(book, res, "TSO", self.pricing, self.step_h)
        total = x1 + res.activated
        return Outcome(total, acts, needs.tso_need_mw - float(book.direction @ total))


class Common(Scheme):
    """One joint market for the TSO's and all DSOs' needs over all bids, with T and all D
    constraints, minimising total cost. A D-connected activation is the DSO's when it relieves
    a violation of its grid's limits that existed before the market; all others are the TSO's.

    With `market.common_decomposed` the DSOs' constraints are cleared first (each DSO's local
    market, as in `local`), and the joint market then clears the rest with the D grids held
    to "no new or worse violation"."""

    name = "common"
    parties: tuple[str, ...] = ()

    def __init__(self, ctx):
        super().__init__(ctx)
        self.pools = ZonePools(self.book, self.dm.zone, self.dm.capability)
        self.rows = self.d_rows(self.pools)
        self.market = FlexMarket(
            self.pools.direction, self.pools.t_bus, self.step_h,
            self.pen.imbalance_eur_per_mwh, self.pen.overload_eur_per_mwh,
            self.pen.voltage_eur_per_bus_h, ptdf=self.tm.ptdf, drows=self.rows,
            areas={"system": np.arange(self.pools.n)}, parties=list(self.parties))
        self.decomposed = ctx.scenario.market.common_decomposed
        if self.decomposed:
            self.dpools, self.dmarket = self.d_markets(areas=False)

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        book = self.book
        state = self.d_state(reports)
        need = needs.tso_need_mw
        flow0 = self.t_flow(reports)
        mw = book.mw
        x1 = np.zeros(len(book))
        acts: list[Activation] = []
        if self.decomposed:
            x1, need, flow0, state, mw, acts = self.dso_first(needs, reports, state)
        k = needs.step
        party_need = {b: -float(self.ctx.brp_imbalance[b][k]) for b in self.parties}
        r = self.market.clear(self.pools.offered(mw, book.price), self.pools.price,
                              need={"system": need}, t_flow0=flow0, t_limit=self.tm.limit_mw,
                              d_state=state, no_worse=self.decomposed, party_need=party_need)
        x = self.pools.split(r.x, mw)
        buyer = np.where(self._dso_pools(state)[self.pools.pool_of] & self.is_d,
                         self.dso_buyers(), "TSO")
        price = r.value[self.pools.pool_of]
        rest = x.copy()
        for party, y in r.party_x.items():
            share = np.divide(y, r.x, out=np.zeros_like(y), where=r.x > 0)
            bought = x * share[self.pools.pool_of]
            rest -= bought
            acts += self.settle_stage(bought, party, price)
        acts += self.settle_stage(np.maximum(rest, 0.0), buyer, price)
        total = x1 + x
        return Outcome(total, acts, needs.tso_need_mw - float(book.direction @ total))

    def _dso_pools(self, state: dict[str, DState]) -> np.ndarray:
        """Pools whose activation relieves a violated row of their D grid."""
        dso_pool = np.zeros(self.pools.n, dtype=bool)
        for dr in self.rows:
            st = state[dr.grid]
            vm = np.nan_to_num(st.vm, nan=1.0)
            over, under = vm > st.vm_max, vm < st.vm_min
            hot = np.nan_to_num(st.loading) > st.loading_max
            d = self.pools.direction[dr.pools]
            relieves = ((dr.dv[over] * d < -1e-7).any(axis=0)
                        | (dr.dv[under] * d > 1e-7).any(axis=0)
                        | (dr.dl[hot] * d < -1e-7).any(axis=0))
            dso_pool[dr.pools] = relieves
        return dso_pool


class Integrated(Common):
    """The common market run by an independent market operator, where balance responsible
    parties also trade: each BRP (RES producers, suppliers) buys flexibility against its own
    portfolio imbalance instead of paying the imbalance price, so parties may buy in opposite
    directions; the TSO buys what balancing is left and the DSOs their constraints. Without
    BRP trading (`market.brp_trading = false`) it is the common market."""

    name = "integrated"

    def __init__(self, ctx):
        self.parties = tuple(ctx.brp_imbalance) if ctx.scenario.market.brp_trading else ()
        super().__init__(ctx)


def make_scheme(name: str, ctx):
    kinds = {c.name: c for c in (NoCoordination, Centralized, Local, SharedBalancing, Common,
                                 Integrated)}
    if name not in kinds:
        raise ValueError(f"unknown scheme '{name}' (known: {', '.join(SCHEMES)})")
    return kinds[name](ctx)
