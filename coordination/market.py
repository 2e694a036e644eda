"""One flexibility market LP with transmission and distribution constraints (pyomo + HiGHS).

The schemes build one or more of these: the DSOs' local markets (D constraints, optionally an
area balance per DSO), the common TSO-DSO market (T and D constraints, system balance). The
model is built once per run; each step only bounds (offered MW), prices, needs and the
right-hand sides of the network rows change, pushed into pyomo's persistent HiGHS interface.

Columns are pools of bid slots (`DPools`): slots of one grid, zone (feeder), direction and price,
or for transmission slots one T bus, direction and price. Rows::

    x_p in [0, mw_p]                                               activated MW per pool
    sum_{p in a} dir_p x_p + short_a - long_a = need_a             balance of area a
    lo_l <= sum_p PTDF[l, t_p] dir_p x_p - up_l + dn_l <= hi_l     T branches (hi = limit - flow0)
    sum_p dV[r, p] dir_p x_p - ovu_r <= vmax_r - v0_r              D bus voltage, upper
    sum_p dV[r, p] dir_p x_p + ovd_r >= vmin_r - v0_r              D bus voltage, lower
    sum_p dL[b, p] dir_p x_p - ovl_b <= lmax_b - l0_b              D branch loading (%)

    min step_h * (sum price_p x_p + pen_imb (short+long) + pen_T (up+dn) + pen_V (ovu+ovd)
                  + sum_b pen_L_b ovl_b)

with pen_V per pu (the scenario's price per bus-hour at 0.01 pu) and pen_L_b per percentage
point (the overload price times the branch rating / 100). Equal prices are ranked by pool index
through a cost perturbation of 1e-5 EUR/MWh per rank, so the optimum is unique.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs
from pyomo.core.expr.numeric_expr import LinearExpression

TIE_EPS = 1e-5
COEF_TOL = 1e-7  # sensitivities below this (per MW) are left out of the rows
VOLTAGE_STEP_PU = 0.01  # one bus-hour penalty buys 0.01 pu of voltage for an hour


@dataclass
class DRows:
    """Linear constraints of one D grid (sensitivities fixed for the run)."""

    grid: str
    pools: np.ndarray  # pool indices of this grid (columns)
    dv: np.ndarray  # (buses, pools) pu per MW injected
    dl: np.ndarray  # (branches, pools) percentage points per MW injected
    rating_mva: np.ndarray  # (branches,)
    hv: np.ndarray | None = None  # (all pools,) pu change of the grid's interface voltage per
    #                               MW injected by each pool of the market: all its buses follow


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
    objective: float
    balance_price: dict[str, float] = field(default_factory=dict)  # dual per area, EUR/MWh
    party_x: dict[str, np.ndarray] = field(default_factory=dict)  # MW per pool bought by party
    value: np.ndarray | None = None  # EUR/MWh per pool: price - reduced cost (own direction)


class FlexMarket:
    """A market over pools with optional T rows (PTDF), D rows and balance areas."""

    def __init__(self, direction: np.ndarray, t_col: np.ndarray, step_h: float,
                 pen_imbalance: float, pen_overload: float, pen_voltage_bus_h: float,
                 ptdf: np.ndarray | None = None, drows: list[DRows] | None = None,
                 areas: dict[str, np.ndarray] | None = None,
                 parties: list[str] | None = None):
        """`parties`: market parties (BRPs) that buy part of any pool's activation to cover
        their own imbalance (need per party per step; unserved at the imbalance price)."""
        self.n = len(direction)
        self.dir = np.asarray(direction, dtype=float)
        self.step_h = step_h
        self.areas = dict(areas or {})
        self.drows = list(drows or [])
        m = pyo.ConcreteModel(name="flexmarket")
        n = self.n
        m.P = pyo.RangeSet(0, n - 1)
        m.x = pyo.Var(m.P, bounds=(0.0, 0.0))
        m.cost = pyo.Param(m.P, mutable=True, initialize=0.0)
        terms_c: list = [m.cost[p] for p in range(n)]
        terms_v: list = [m.x[p] for p in range(n)]

        area_names = list(self.areas)
        m.A = pyo.RangeSet(0, len(area_names) - 1)
        m.need = pyo.Param(m.A, mutable=True, initialize=0.0)
        m.short = pyo.Var(m.A, within=pyo.NonNegativeReals)
        m.long = pyo.Var(m.A, within=pyo.NonNegativeReals)

        def area_rule(m, a):
            pools = self.areas[area_names[a]]
            return LinearExpression(
                linear_coefs=[self.dir[p] for p in pools] + [1.0, -1.0],
                linear_vars=[m.x[int(p)] for p in pools] + [m.short[a], m.long[a]],
            ) == m.need[a]

        m.balance = pyo.Constraint(m.A, rule=area_rule)
        for a in range(len(area_names)):
            terms_c += [pen_imbalance, pen_imbalance]
            terms_v += [m.short[a], m.long[a]]

        # market parties: y[b, p] <= part of x[p] bought by party b for its own balance
        self.parties = list(parties or [])
        m.Q = pyo.RangeSet(0, len(self.parties) - 1)
        m.y = pyo.Var(m.Q, m.P, within=pyo.NonNegativeReals)
        m.q_need = pyo.Param(m.Q, mutable=True, initialize=0.0)
        m.q_short = pyo.Var(m.Q, within=pyo.NonNegativeReals)
        m.q_long = pyo.Var(m.Q, within=pyo.NonNegativeReals)
        if self.parties:
            m.share = pyo.Constraint(m.P, rule=lambda m, p: LinearExpression(
                linear_coefs=[1.0] * len(self.parties) + [-1.0],
                linear_vars=[m.y[b, p] for b in m.Q] + [m.x[p]]) <= 0.0)
            m.party = pyo.Constraint(m.Q, rule=lambda m, b: LinearExpression(
                linear_coefs=self.dir.tolist() + [1.0, -1.0],
                linear_vars=[m.y[b, p] for p in m.P] + [m.q_short[b], m.q_long[b]])
                == m.q_need[b])
            for b in range(len(self.parties)):
                terms_c += [pen_imbalance, pen_imbalance]
                terms_v += [m.q_short[b], m.q_long[b]]

        # transmission rows: only branches some pool can move
        self.t_rows = np.zeros(0, dtype=np.int64)
        if ptdf is not None:
            has_t = t_col >= 0
            coef = np.zeros((ptdf.shape[0], n))
            coef[:, has_t] = ptdf[:, t_col[has_t]] * self.dir[has_t]
            coef[np.abs(coef) < COEF_TOL] = 0.0
            self.t_rows = np.flatnonzero(np.any(coef != 0.0, axis=1))
            self._t_coef = coef
            m.L = pyo.RangeSet(0, len(self.t_rows) - 1)
            m.t_lo = pyo.Param(m.L, mutable=True, initialize=-1e9)
            m.t_hi = pyo.Param(m.L, mutable=True, initialize=1e9)
            m.t_up = pyo.Var(m.L, within=pyo.NonNegativeReals)
            m.t_dn = pyo.Var(m.L, within=pyo.NonNegativeReals)

            def t_rule(m, k):
                row = coef[self.t_rows[k]]
                nz = np.flatnonzero(row)
                body = LinearExpression(
                    linear_coefs=row[nz].tolist() + [-1.0, 1.0],
                    linear_vars=[m.x[int(p)] for p in nz] + [m.t_up[k], m.t_dn[k]])
                return pyo.inequality(m.t_lo[k], body, m.t_hi[k])

            m.t_branch = pyo.Constraint(m.L, rule=t_rule)
            for k in range(len(self.t_rows)):
                terms_c += [pen_overload, pen_overload]
                terms_v += [m.t_up[k], m.t_dn[k]]

        # distribution rows, per grid
        vb, lb = [], []
        for g, dr in enumerate(self.drows):
            cv = dr.dv * self.dir[dr.pools]  # with the interface voltage held; u_g adds its move
            cl = dr.dl * self.dir[dr.pools]
            for r in range(cv.shape[0]):
                nz = np.flatnonzero(np.abs(cv[r]) >= COEF_TOL)
                if len(nz):
                    vb.append((g, r, dr.pools[nz], cv[r, nz]))
            for r in range(cl.shape[0]):
                nz = np.flatnonzero(np.abs(cl[r]) >= COEF_TOL)
                if len(nz):
                    lb.append((g, r, dr.pools[nz], cl[r, nz], dr.rating_mva[r]))
        # interface voltage of each D grid: u_g = sum_p hv_g[p] dir_p x_p (one row per grid)
        hv_grids = [g for g, dr in enumerate(self.drows) if dr.hv is not None]
        m.G = pyo.RangeSet(0, len(self.drows) - 1)
        m.u = pyo.Var(m.G)
        for g in range(len(self.drows)):
            if g not in hv_grids:
                m.u[g].fix(0.0)

        def hv_rule(m, g):
            dr = self.drows[g]
            if dr.hv is None:
                return pyo.Constraint.Skip
            c = dr.hv * self.dir
            nz = np.flatnonzero(np.abs(c) >= COEF_TOL)
            return LinearExpression(linear_coefs=[1.0] + (-c[nz]).tolist(),
                                    linear_vars=[m.u[g]] + [m.x[int(p)] for p in nz]) == 0.0

        m.hv = pyo.Constraint(m.G, rule=hv_rule)
        self._vrows = [(g, r) for g, r, _, _ in vb]
        self._lrows = [(g, r) for g, r, _, _, _ in lb]
        m.V = pyo.RangeSet(0, len(vb) - 1)
        m.B = pyo.RangeSet(0, len(lb) - 1)
        m.v_hi = pyo.Param(m.V, mutable=True, initialize=1e9)
        m.v_lo = pyo.Param(m.V, mutable=True, initialize=-1e9)
        m.l_hi = pyo.Param(m.B, mutable=True, initialize=1e9)
        m.ovu = pyo.Var(m.V, within=pyo.NonNegativeReals)
        m.ovd = pyo.Var(m.V, within=pyo.NonNegativeReals)
        m.ovl = pyo.Var(m.B, within=pyo.NonNegativeReals)

        def v_up(m, k):
            g, _, pools, c = vb[k]
            return LinearExpression(linear_coefs=c.tolist() + [1.0, -1.0],
                                    linear_vars=[m.x[int(p)] for p in pools] + [m.u[g], m.ovu[k]]
                                    ) <= m.v_hi[k]

        def v_dn(m, k):
            g, _, pools, c = vb[k]
            return LinearExpression(linear_coefs=c.tolist() + [1.0, 1.0],
                                    linear_vars=[m.x[int(p)] for p in pools] + [m.u[g], m.ovd[k]]
                                    ) >= m.v_lo[k]

        def l_up(m, k):
            _, _, pools, c, _ = lb[k]
            return LinearExpression(linear_coefs=c.tolist() + [-1.0],
                                    linear_vars=[m.x[int(p)] for p in pools] + [m.ovl[k]]
                                    ) <= m.l_hi[k]

        m.v_up = pyo.Constraint(m.V, rule=v_up)
        m.v_dn = pyo.Constraint(m.V, rule=v_dn)
        m.l_up = pyo.Constraint(m.B, rule=l_up)
        pen_v = pen_voltage_bus_h / VOLTAGE_STEP_PU
        for k in range(len(vb)):
            terms_c += [pen_v, pen_v]
            terms_v += [m.ovu[k], m.ovd[k]]
        for k, row in enumerate(lb):
            terms_c.append(pen_overload * row[4] / 100.0)
            terms_v.append(m.ovl[k])

        m.obj = pyo.Objective(expr=LinearExpression(linear_coefs=terms_c, linear_vars=terms_v),
                              sense=pyo.minimize)
        self.model = m
        self.area_names = area_names
        self._x = [m.x[p] for p in range(n)]
        self.solver = self._new_solver()
        self.rank_eps = TIE_EPS * np.arange(n)

    def _new_solver(self) -> Highs:
        solver = Highs()
        cfg = solver.config
        au = cfg.auto_updates
        for key in ("check_for_new_or_removed_constraints", "check_for_new_or_removed_vars",
                    "check_for_new_or_removed_params", "check_for_new_objective",
                    "update_constraints", "update_named_expressions", "update_objective"):
            setattr(au, key, False)
        au.update_vars = True
        au.update_parameters = True
        cfg.load_solutions = False
        cfg.raise_exception_on_nonoptimal_result = False
        cfg.solver_options = {"output_flag": False, "threads": 1}
        solver.set_instance(self.model)
        return solver

    def clear(self, mw: np.ndarray, price: np.ndarray, need: dict[str, float] | None = None,
              t_flow0: np.ndarray | None = None, t_limit: np.ndarray | None = None,
              d_state: dict[str, DState] | None = None, no_worse: bool = False,
              party_need: dict[str, float] | None = None) -> MarketResult:
        """Clear one step. `no_worse`: D rows only forbid making a violation worse or new."""
        m = self.model
        mw = np.maximum(np.asarray(mw, dtype=float), 0.0)
        for p, v in zip(self._x, mw.tolist(), strict=True):
            p.setub(v)
        order = np.lexsort((np.arange(self.n), price))
        rank = np.empty(self.n)
        rank[order] = np.arange(self.n)
        m.cost.store_values(dict(enumerate((price + TIE_EPS * rank).tolist())), check=False)
        need = need or {}
        m.need.store_values({a: float(need.get(name, 0.0))
                             for a, name in enumerate(self.area_names)}, check=False)
        if self.parties:
            party_need = party_need or {}
            m.q_need.store_values({b: float(party_need.get(name, 0.0))
                                   for b, name in enumerate(self.parties)}, check=False)
        if len(self.t_rows):
            lim = t_limit[self.t_rows]
            f0 = t_flow0[self.t_rows]
            m.t_lo.store_values(dict(enumerate((-lim - f0).tolist())), check=False)
            m.t_hi.store_values(dict(enumerate((lim - f0).tolist())), check=False)
        if self._vrows:
            hi, lo = [], []
            for g, r in self._vrows:
                st = d_state[self.drows[g].grid]
                v0 = float(st.vm[r]) if np.isfinite(st.vm[r]) else 1.0
                up, dn = st.vm_max - v0, st.vm_min - v0
                hi.append(max(up, 0.0) if no_worse else up)
                lo.append(min(dn, 0.0) if no_worse else dn)
            m.v_hi.store_values(dict(enumerate(hi)), check=False)
            m.v_lo.store_values(dict(enumerate(lo)), check=False)
        if self._lrows:
            hi = []
            for g, r in self._lrows:
                st = d_state[self.drows[g].grid]
                room = st.loading_max - float(np.nan_to_num(st.loading[r]))
                hi.append(max(room, 0.0) if no_worse else room)
            m.l_hi.store_values(dict(enumerate(hi)), check=False)
        res = self.solver.solve(m)
        if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
            self.solver = self._new_solver()  # fresh HiGHS model: no warm start
            res = self.solver.solve(m)
            if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
                raise RuntimeError(f"market LP not solved: {res.termination_condition.name}")
        vals = res.solution_loader.get_vars(self._x)
        x = np.clip(np.array([vals[v] for v in self._x]), 0.0, mw)
        x[x < 1e-6] = 0.0
        unserved = {name: float(need.get(name, 0.0)) - float(self.dir[pools] @ x[pools])
                    for name, pools in self.areas.items()}
        prices = {}
        if self.area_names:
            duals = res.solution_loader.get_duals([m.balance[a] for a in m.A])
            prices = {name: float(duals[m.balance[a]]) for a, name in enumerate(self.area_names)}
        rc = res.solution_loader.get_reduced_costs(self._x)
        value = price - np.array([rc[v] for v in self._x])  # locational value, own direction
        bought = {}
        if self.parties:
            yv = res.solution_loader.get_vars([m.y[b, p] for b in m.Q for p in m.P])
            for b, name in enumerate(self.parties):
                y = np.array([yv[m.y[b, p]] for p in range(self.n)])
                bought[name] = np.clip(np.where(y < 1e-6, 0.0, y), 0.0, x)
        return MarketResult(x=x, unserved=unserved, objective=float(price @ x) * self.step_h,
                            balance_price=prices, party_x=bought, value=value)
