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

    def _new_solver(self, fast: bool = True) -> Highs:
        """A persistent HiGHS instance of the model. In the fast mode each step's numbers go
        straight into the HiGHS model in a few vectorised calls (pyomo's per-element updates
        cost more than the solve); the pyomo Params then only hold the build-time values."""
        solver = Highs()
        cfg = solver.config
        au = cfg.auto_updates
        for key in ("check_for_new_or_removed_constraints", "check_for_new_or_removed_vars",
                    "check_for_new_or_removed_params", "check_for_new_objective",
                    "update_constraints", "update_named_expressions", "update_objective"):
            setattr(au, key, False)
        cfg.load_solutions = False
        cfg.raise_exception_on_nonoptimal_result = False
        cfg.solver_options = {"output_flag": False, "threads": 1}
        solver.set_instance(self.model)
        self._idx = self._solver_index(solver) if fast else None
        au.update_vars = au.update_parameters = self._idx is None
        return solver

    def _solver_index(self, solver: Highs) -> dict | None:
        """Column and row positions of the model's parts inside the HiGHS model."""
        h = getattr(solver, "_solver_model", None)
        vmap = getattr(solver, "_pyomo_var_to_solver_var_map", None)
        cmap = getattr(solver, "_pyomo_con_to_solver_con_map", None)
        if h is None or vmap is None or cmap is None:
            return None
        m = self.model

        def rows(con, keys) -> np.ndarray:
            return np.array([cmap[con[k]] for k in keys], dtype=np.int32)

        return dict(
            h=h, x=np.array([vmap[id(v)] for v in self._x], dtype=np.int32),
            bal=rows(m.balance, range(len(self.area_names))),
            party=rows(m.party, range(len(self.parties))) if self.parties else None,
            y=np.array([[vmap[id(m.y[b, p])] for p in range(self.n)]
                        for b in range(len(self.parties))], dtype=np.int32),
            t=rows(m.t_branch, range(len(self.t_rows))) if len(self.t_rows) else None,
            vu=rows(m.v_up, range(len(self._vrows))), vd=rows(m.v_dn, range(len(self._vrows))),
            lu=rows(m.l_up, range(len(self._lrows))))

    def _rhs(self, d_state, no_worse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-hand sides of the D rows for this step's state."""
        vm0 = np.array([d_state[self.drows[g].grid].vm[r] for g, r in self._vrows], dtype=float)
        vm0 = np.where(np.isfinite(vm0), vm0, 1.0)
        vmax = np.array([d_state[self.drows[g].grid].vm_max for g, _ in self._vrows])
        vmin = np.array([d_state[self.drows[g].grid].vm_min for g, _ in self._vrows])
        l0 = np.nan_to_num(np.array([d_state[self.drows[g].grid].loading[r]
                                     for g, r in self._lrows], dtype=float))
        lmax = np.array([d_state[self.drows[g].grid].loading_max for g, _ in self._lrows])
        v_hi, v_lo, l_hi = vmax - vm0, vmin - vm0, lmax - l0
        if no_worse:
            v_hi, v_lo, l_hi = np.maximum(v_hi, 0), np.minimum(v_lo, 0), np.maximum(l_hi, 0)
        return v_hi, v_lo, l_hi

    def clear(self, mw: np.ndarray, price: np.ndarray, need: dict[str, float] | None = None,
              t_flow0: np.ndarray | None = None, t_limit: np.ndarray | None = None,
              d_state: dict[str, DState] | None = None, no_worse: bool = False,
              party_need: dict[str, float] | None = None) -> MarketResult:
        """Clear one step. `no_worse`: D rows only forbid making a violation worse or new."""
        mw = np.maximum(np.asarray(mw, dtype=float), 0.0)
        order = np.lexsort((np.arange(self.n), price))
        rank = np.empty(self.n)
        rank[order] = np.arange(self.n)
        need = need or {}
        party_need = party_need or {}
        data = dict(
            mw=mw, cost=price + TIE_EPS * rank,
            need=np.array([float(need.get(a, 0.0)) for a in self.area_names]),
            q_need=np.array([float(party_need.get(b, 0.0)) for b in self.parties]))
        if len(self.t_rows):
            lim, f0 = t_limit[self.t_rows], t_flow0[self.t_rows]
            data["t_lo"], data["t_hi"] = -lim - f0, lim - f0
        if self._vrows or self._lrows:
            data["v_hi"], data["v_lo"], data["l_hi"] = self._rhs(d_state, no_worse)
        if self._idx is not None:
            self._push(data)
        else:
            self._store(data)
        res = self.solver.solve(self.model)
        if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
            self._store(data)  # fresh HiGHS model from the pyomo model: no warm start
            self.solver = self._new_solver(fast=False)
            res = self.solver.solve(self.model)
            if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
                raise RuntimeError(f"market LP not solved: {res.termination_condition.name}")
            x, rc, duals, y = self._read_pyomo(res)
            self.solver = self._new_solver()
        else:
            x, rc, duals, y = self._read_highs() if self._idx is not None \
                else self._read_pyomo(res)
        x = np.clip(x, 0.0, mw)
        x[x < 1e-6] = 0.0
        unserved = {name: float(need.get(name, 0.0)) - float(self.dir[pools] @ x[pools])
                    for name, pools in self.areas.items()}
        prices = dict(zip(self.area_names, duals.tolist(), strict=True))
        value = price - rc  # locational value, own direction
        bought = {name: np.clip(np.where(y[b] < 1e-6, 0.0, y[b]), 0.0, x)
                  for b, name in enumerate(self.parties)}
        return MarketResult(x=x, unserved=unserved, objective=float(price @ x) * self.step_h,
                            balance_price=prices, party_x=bought, value=value)

    def _push(self, d: dict) -> None:
        idx, h = self._idx, self._idx["h"]
        n = self.n
        h.changeColsBounds(n, idx["x"], np.zeros(n), d["mw"])
        h.changeColsCost(n, idx["x"], d["cost"])

        def rows(key, lo, hi):
            k = idx[key]
            if k is not None and len(k):
                h.changeRowsBounds(len(k), k, np.asarray(lo, float), np.asarray(hi, float))

        rows("bal", d["need"], d["need"])
        if self.parties:
            rows("party", d["q_need"], d["q_need"])
        if "t_lo" in d:
            rows("t", d["t_lo"], d["t_hi"])
        if "v_hi" in d:
            inf = np.full(len(d["v_hi"]), np.inf)
            rows("vu", -inf, d["v_hi"])
            rows("vd", d["v_lo"], inf)
            rows("lu", np.full(len(d["l_hi"]), -np.inf), d["l_hi"])

    def _store(self, d: dict) -> None:
        """The step's numbers into the pyomo model (used without the fast path)."""
        m = self.model
        for v, ub in zip(self._x, d["mw"].tolist(), strict=True):
            v.setub(ub)
        m.cost.store_values(dict(enumerate(d["cost"].tolist())), check=False)
        m.need.store_values(dict(enumerate(d["need"].tolist())), check=False)
        if self.parties:
            m.q_need.store_values(dict(enumerate(d["q_need"].tolist())), check=False)
        if "t_lo" in d:
            m.t_lo.store_values(dict(enumerate(d["t_lo"].tolist())), check=False)
            m.t_hi.store_values(dict(enumerate(d["t_hi"].tolist())), check=False)
        if "v_hi" in d:
            m.v_hi.store_values(dict(enumerate(d["v_hi"].tolist())), check=False)
            m.v_lo.store_values(dict(enumerate(d["v_lo"].tolist())), check=False)
            m.l_hi.store_values(dict(enumerate(d["l_hi"].tolist())), check=False)

    def _read_highs(self):
        sol = self._idx["h"].getSolution()
        col = np.asarray(sol.col_value)
        col_dual = np.asarray(sol.col_dual)
        row_dual = np.asarray(sol.row_dual)
        idx = self._idx
        y = col[idx["y"]] if self.parties else np.zeros((0, self.n))
        return col[idx["x"]], col_dual[idx["x"]], row_dual[idx["bal"]], y

    def _read_pyomo(self, res):
        m = self.model
        vals = res.solution_loader.get_vars(self._x)
        rc = res.solution_loader.get_reduced_costs(self._x)
        duals = (res.solution_loader.get_duals([m.balance[a] for a in m.A])
                 if self.area_names else {})
        y = np.zeros((len(self.parties), self.n))
        if self.parties:
            yv = res.solution_loader.get_vars([m.y[b, p] for b in m.Q for p in m.P])
            y = np.array([[yv[m.y[b, p]] for p in range(self.n)]
                          for b in range(len(self.parties))])
        return (np.array([vals[v] for v in self._x]), np.array([rc[v] for v in self._x]),
                np.array([duals[m.balance[a]] for a in range(len(self.area_names))]), y)
