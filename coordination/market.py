"""The flexibility market: one LP over pools with balance areas, parties, T and D rows.

The schemes build one or more of these: the DSOs' local markets (D constraints, optionally an
area balance per DSO), the common TSO-DSO market (T and D constraints, system balance), and
through :class:`~tsodso.coordination.centralized.CentralizedMarket` the TSO's market (T
constraints, system balance). The LP, its constraint families, the solver, tie breaking and
the robustness rules are the core's, documented in :mod:`tsodso.coordination.lp`; this module
turns a scheme's per-step data into that LP's numbers and reads the result back.

Columns are pools of bid slots (`DPools`): slots of one grid, zone (feeder), direction and price,
or for transmission slots one T bus, direction and price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from tsodso.coordination.families import (
    define_balance,
    define_distribution_loading,
    define_distribution_voltage,
    define_interface_voltage,
    define_objective,
    define_offers,
    define_parties,
    define_transmission,
    side_needs,
)
from tsodso.coordination.lp import (
    COEF_TOL,
    TIE_EPS,
    VOLTAGE_STEP_PU,
    ZERO_MW,
    DRows,
    MarketLP,
)

__all__ = ["COEF_TOL", "TIE_EPS", "VOLTAGE_STEP_PU", "DRows", "DState", "FlexMarket",
           "MarketResult"]


@dataclass
class DState:
    """One D grid's state before the market: voltages, loadings and limits."""

    vm: np.ndarray
    loading: np.ndarray
    vm_min: float
    vm_max: float
    loading_max: float


@dataclass
class MarketResult:
    x: np.ndarray  # MW per pool
    unserved: dict[str, float]  # per area: need - sum(dir x)
    objective: float  # EUR: sum price x * step_h (offers only, no penalties)
    balance_price: dict[str, float] = field(default_factory=dict)  # dual per area, EUR/MWh
    party_x: dict[str, np.ndarray] = field(default_factory=dict)  # MW per pool bought by party
    value: np.ndarray | None = None  # EUR/MWh per pool: price - reduced cost (own direction)
    # EUR/MWh per pool: what each cause adds to the locational value (the duals of its rows
    # times the pool's coefficients): "balance", "t" (T rows), "party" (BRP rows), and one
    # entry per D grid (its voltage, loading and interface-voltage rows)
    parts: dict[str, np.ndarray] = field(default_factory=dict)


class FlexMarket:
    """A market over pools with optional T rows (PTDF), D rows, balance areas and parties."""

    def __init__(self, direction: np.ndarray, t_col: np.ndarray, step_h: float,
                 pen_imbalance: float, pen_overload: float, pen_voltage_bus_h: float,
                 ptdf: np.ndarray | None = None, drows: list[DRows] | None = None,
                 areas: dict[str, np.ndarray] | None = None,
                 parties: list[str] | None = None, ptdf_tol: float = COEF_TOL,
                 ties: str = "always", name: str = "flexmarket",
                 party_penalty: float | None = None):
        """`parties`: market parties (BRPs) that buy activations in the direction of their
        own imbalance (need per party per step; unserved at the imbalance price; the parties
        needing one direction share its purchase in proportion to their needs).
        `ptdf_tol`: PTDF coefficients below it are left out. `ties`: the tie policy of
        :meth:`MarketLP.clear_prices` ("always" or "offered"). `party_penalty`: EUR/MWh at
        which a party values its open position (default: `pen_imbalance`)."""
        self.n = len(direction)
        self.dir = np.asarray(direction, dtype=float)
        self.step_h = step_h
        self.areas = dict(areas or {})
        self.area_names = list(self.areas)
        self.drows = list(drows or [])
        self.parties = list(parties or [])
        self.ties = ties
        lp = self.lp = MarketLP(name, self.dir)
        if ties == "offered":  # the box reach alone: the last-solution rule saved nothing
            lp.near_share = None  # here (local, 48 steps) and it re-solves at exact prices
        define_offers(lp)
        define_balance(lp, self.areas, pen_imbalance)
        self.all_bought = not self.areas  # parties alone buy: every activation (families)
        define_parties(lp, self.parties,
                       pen_imbalance if party_penalty is None else party_penalty,
                       all_bought=self.all_bought)
        self.t_rows = np.zeros(0, dtype=np.int64)
        if ptdf is not None:
            self.t_rows = define_transmission(lp, np.asarray(t_col), np.asarray(ptdf, float),
                                              pen_overload, ptdf_tol)
        if self.drows:
            define_interface_voltage(lp, self.drows)
        self._vrows = define_distribution_voltage(lp, self.drows, pen_voltage_bus_h)
        self._lrows = define_distribution_loading(lp, self.drows, pen_overload)
        define_objective(lp)
        lp.attach()
        self._cause_rows = self._rows_by_cause()

    def _party_split(self, y: np.ndarray, x: np.ndarray, need: np.ndarray
                     ) -> dict[str, np.ndarray]:
        """MW per pool bought by each party: its direction's purchase `y` (`define_parties`)
        shared among the parties needing that direction in proportion to their needs."""
        if not self.parties:
            return {}
        y = np.clip(np.where(y < ZERO_MW, 0.0, y), 0.0, x)
        side = side_needs(need)
        out = {}
        for name, q in zip(self.parties, need.tolist(), strict=True):
            s = 0 if q > 0 else 1
            mine = self.dir > 0 if q > 0 else self.dir < 0
            out[name] = np.where(mine, y * (q / side[s]), 0.0) if q != 0.0 else np.zeros(self.n)
        return out

    def _rows_by_cause(self) -> dict[str, np.ndarray]:
        """HiGHS row positions of each cause of a locational value (see `MarketResult`)."""
        lp = self.lp
        out = {"balance": lp.row_positions("balance"), "t": lp.row_positions("t"),
               "party": np.r_[lp.row_positions("share"), lp.row_positions("party")]}
        vu, vd, lu = (lp.row_positions(k) for k in ("v_up", "v_dn", "l_up"))
        hv = dict(zip(getattr(lp, "hv_grids", []), lp.row_positions("hv"), strict=True))
        for g, dr in enumerate(self.drows):
            vk = [k for k, (gg, _) in enumerate(self._vrows) if gg == g]
            lk = [k for k, (gg, _) in enumerate(self._lrows) if gg == g]
            rows = [vu[vk], vd[vk], lu[lk]] if len(vu) or len(lu) else []
            if g in hv:
                rows.append(np.array([hv[g]]))
            out[dr.grid] = (np.concatenate(rows).astype(np.int32) if rows
                            else np.zeros(0, dtype=np.int32))
        return out

    def update_drows(self, drows: list[DRows]) -> None:
        """Replace the D rows of the grids in `drows` (same grids, pools and rows as at the
        build, new sensitivities) and write their coefficients into the LP; coefficients
        below ``COEF_TOL`` are written as 0, as at the build. Each row is written over all
        its grid's pools (a 0 stays an entry), so that from a grid's second refresh on its
        rows keep their pattern and the LP writes them in place (`MarketLP.set_coefs`)."""
        lp = self.lp
        pos = {dr.grid: g for g, dr in enumerate(self.drows)}
        rows, data, index, width = [], [], [], []
        for dr in drows:
            g = pos[dr.grid]
            self.drows[g] = dr
            pools = np.asarray(dr.pools, dtype=np.int64)
            order = None
            if np.any(np.diff(pools) <= 0):  # CSR order: pools ascending in each row
                order = np.argsort(pools, kind="stable")
                pools = pools[order]
            for attr, keys, fams in (("dv", self._vrows, ("v_up", "v_dn")),
                                     ("dl", self._lrows, ("l_up",))):
                ks, own = self._grid_keys(keys, g)
                if len(ks) == 0:
                    continue
                c = getattr(dr, attr)[own] * self.dir[dr.pools]
                c[np.abs(c) < COEF_TOL] = 0.0
                if order is not None:
                    c = c[:, order]
                flat, tiled = c.ravel(), self._tiled(pools, len(ks))
                for fam in fams:
                    rows.append(lp.row_positions(fam)[ks])
                    data.append(flat)
                    index.append(tiled)
                    width.append(np.full(len(ks), len(pools)))
        if rows:
            indptr = np.zeros(sum(len(r) for r in rows) + 1, dtype=np.int64)
            np.cumsum(np.concatenate(width), out=indptr[1:])
            lp.set_coefs(np.concatenate(rows),
                         sp.csr_matrix((np.concatenate(data), np.concatenate(index), indptr),
                                       shape=(len(indptr) - 1, self.n)))

    def _tiled(self, pools: np.ndarray, n: int) -> np.ndarray:
        """`pools` `n` times end to end: the columns of `n` rows over a grid's pools (kept:
        every refresh writes the same)."""
        cache = self.__dict__.setdefault("_tiled_cache", {})
        key = (pools.tobytes(), n)
        if key not in cache:
            cache[key] = np.tile(pools, n)
        return cache[key]

    def _grid_keys(self, keys: list[tuple[int, int]], g: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions in `keys` ((grid, row) per LP row) of grid `g`'s rows, and those rows'
        positions in the grid's `DRows`."""
        cache = self.__dict__.setdefault("_keys_cache", {})
        if (id(keys), g) not in cache:
            ks = np.array([k for k, (gg, _) in enumerate(keys) if gg == g], dtype=np.int64)
            cache[(id(keys), g)] = ks, np.array([keys[k][1] for k in ks], dtype=np.int64)
        return cache[(id(keys), g)]

    @property
    def solver(self):
        """The HiGHS model (one per market, kept for the whole run)."""
        return self.lp.highs

    def _rhs(self, d_state, no_worse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-hand sides of the D rows for this step's state."""
        vm0, vmin, vmax = self._gather(self._vrows, d_state, "vm", "vm_min", "vm_max")
        vm0 = np.where(np.isfinite(vm0), vm0, 1.0)
        l0, lmax = self._gather(self._lrows, d_state, "loading", "loading_max")
        l0 = np.nan_to_num(l0)
        v_hi, v_lo, l_hi = vmax - vm0, vmin - vm0, lmax - l0
        if no_worse:
            v_hi, v_lo, l_hi = np.maximum(v_hi, 0), np.minimum(v_lo, 0), np.maximum(l_hi, 0)
        return v_hi, v_lo, l_hi

    def _gather(self, keys: list[tuple[int, int]], d_state: dict[str, DState], values: str,
                *limits: str) -> list[np.ndarray]:
        """Per LP row of `keys` ((grid, row) each): the state's `values` at the row and the
        grid's `limits`, filled grid by grid (a per-row Python loop cost ~4 ms a step)."""
        cache = self.__dict__.setdefault("_groups_cache", {})
        if id(keys) not in cache:
            g = np.array([k[0] for k in keys], dtype=np.int64)
            r = np.array([k[1] for k in keys], dtype=np.int64)
            cache[id(keys)] = [(self.drows[k].grid, np.flatnonzero(g == k), r[g == k])
                               for k in np.unique(g).tolist()]
        out = [np.empty(len(keys)) for _ in range(1 + len(limits))]
        for grid, at, rows in cache[id(keys)]:
            st = d_state[grid]
            out[0][at] = np.asarray(getattr(st, values), dtype=float)[rows]
            for o, name in zip(out[1:], limits, strict=True):
                o[at] = getattr(st, name)
        return out

    def clear(self, mw: np.ndarray, price: np.ndarray, need: dict[str, float] | None = None,
              t_flow0: np.ndarray | None = None, t_limit: np.ndarray | None = None,
              d_state: dict[str, DState] | None = None, no_worse: bool = False,
              party_need: dict[str, float] | None = None,
              exact_prices: bool = False, t_no_worse: bool = False) -> MarketResult:
        """Clear one step. `no_worse`: D rows only forbid making a violation worse or new.
        `exact_prices` (tie policy "offered" only): re-solve a tie-broken step at the true
        prices for exact duals and values. `t_no_worse`: T rows only forbid making an
        overload worse or new (a market that must not redispatch the T grid)."""
        lp = self.lp
        mw = np.maximum(np.asarray(mw, dtype=float), 0.0)
        price = np.asarray(price, dtype=float)
        need = need or {}
        party_need = party_need or {}
        lp.set_offers(mw)
        lp.set_rows("balance", *[np.array([float(need.get(a, 0.0)) for a in self.area_names])]
                    * 2)
        q = np.array([float(party_need.get(b, 0.0)) for b in self.parties])
        if self.parties:
            lp.set_rows("party", *[side_needs(q)] * 2)
        if len(self.t_rows):
            lim, f0 = t_limit[self.t_rows], t_flow0[self.t_rows]
            lo, hi = -lim - f0, lim - f0
            if t_no_worse:
                lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
            lp.set_rows("t", lo, hi)
        if self._vrows or self._lrows:
            v_hi, v_lo, l_hi = self._rhs(d_state, no_worse)
            lp.set_rows("v_up", None, v_hi)
            lp.set_rows("v_dn", v_lo, None)
            lp.set_rows("l_up", None, l_hi)
        primal, dual = lp.clear_prices(price, self.ties, exact_prices)
        x = np.clip(lp.values(primal, "x"), 0.0, mw)
        x[x < ZERO_MW] = 0.0
        unserved = {name: float(need.get(name, 0.0)) - float(self.dir[pools] @ x[pools])
                    for name, pools in self.areas.items()}
        prices = dict(zip(self.area_names, lp.duals(dual, "balance").tolist(), strict=True))
        value = price - lp.reduced_costs(dual, "x")  # locational value, own direction
        bought = self._party_split(x if self.all_bought else lp.values(primal, "y"), x, q)
        parts = {cause: lp.value_part(dual, rows) for cause, rows in self._cause_rows.items()}
        return MarketResult(x=x, unserved=unserved, objective=float(price @ x) * self.step_h,
                            balance_price=prices, party_x=bought, value=value, parts=parts)
