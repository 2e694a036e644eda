"""The market LP's constraint families, one ``define_*`` function each (as in PyPSA's
``optimization/constraints.py``); the formulation and what changes per step are described in
``coordination/lp.py``, whose `MarketLP` they fill."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression
from tsodso.coordination.lp import COEF_TOL, VOLTAGE_STEP_PU, DRows, MarketLP, RowFamily


def define_offers(lp: MarketLP) -> None:
    """Columns ``x`` (activated MW per pool, upper bound = offer) and their cost."""
    m = lp.model
    n = lp.n
    m.P = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.P, bounds=(0.0, 0.0))
    m.cost = pyo.Param(m.P, mutable=True, initialize=0.0)
    lp.columns["x"] = [m.x[p] for p in range(n)]
    lp.add_cost([m.cost[p] for p in range(n)], lp.columns["x"])


def define_balance(lp: MarketLP, areas: dict[str, np.ndarray], pen_imbalance: float) -> None:
    """One balance row per area (rhs: the area's need) with short/long slacks."""
    m = lp.model
    names = list(areas)
    m.A = pyo.RangeSet(0, len(names) - 1)
    m.need = pyo.Param(m.A, mutable=True, initialize=0.0)
    m.short = pyo.Var(m.A, within=pyo.NonNegativeReals)
    m.long = pyo.Var(m.A, within=pyo.NonNegativeReals)
    d = lp.direction

    def area_rule(m, a):
        pools = areas[names[a]]
        return LinearExpression(
            linear_coefs=[d[p] for p in pools] + [1.0, -1.0],
            linear_vars=[m.x[int(p)] for p in pools] + [m.short[a], m.long[a]],
        ) == m.need[a]

    m.balance = pyo.Constraint(m.A, rule=area_rule)
    for a in range(len(names)):
        lp.add_cost([pen_imbalance, pen_imbalance], [m.short[a], m.long[a]])
    lp.rows["balance"] = RowFamily(m.balance, len(names), m.need, m.need)


def define_parties(lp: MarketLP, parties: list[str], pen_imbalance: float) -> None:
    """Market parties (BRPs): ``y[b, p]``, the part of ``x[p]`` party ``b`` buys for its own
    balance; one balance row per party (unserved at the imbalance price)."""
    m = lp.model
    n = lp.n
    m.Q = pyo.RangeSet(0, len(parties) - 1)
    m.y = pyo.Var(m.Q, m.P, within=pyo.NonNegativeReals)
    m.q_need = pyo.Param(m.Q, mutable=True, initialize=0.0)
    m.q_short = pyo.Var(m.Q, within=pyo.NonNegativeReals)
    m.q_long = pyo.Var(m.Q, within=pyo.NonNegativeReals)
    lp.columns["y"] = [m.y[b, p] for b in range(len(parties)) for p in range(n)]
    if not parties:
        return
    m.share = pyo.Constraint(m.P, rule=lambda m, p: LinearExpression(
        linear_coefs=[1.0] * len(parties) + [-1.0],
        linear_vars=[m.y[b, p] for b in m.Q] + [m.x[p]]) <= 0.0)
    lp.extra_rows["share"] = [m.share[p] for p in range(n)]
    m.party = pyo.Constraint(m.Q, rule=lambda m, b: LinearExpression(
        linear_coefs=lp.direction.tolist() + [1.0, -1.0],
        linear_vars=[m.y[b, p] for p in m.P] + [m.q_short[b], m.q_long[b]])
        == m.q_need[b])
    for b in range(len(parties)):
        lp.add_cost([pen_imbalance, pen_imbalance], [m.q_short[b], m.q_long[b]])
    lp.rows["party"] = RowFamily(m.party, len(parties), m.q_need, m.q_need)


def define_transmission(lp: MarketLP, t_col: np.ndarray, ptdf: np.ndarray,
                        pen_overload: float, tol: float = COEF_TOL) -> np.ndarray:
    """T branch rows through the PTDF (pools with ``t_col < 0`` have no T effect) with
    up/down overload slacks; only branches some pool can move (a coefficient ``>= tol``).
    Returns those branches (PTDF rows) in LP row order."""
    m = lp.model
    has_t = t_col >= 0
    coef = np.zeros((ptdf.shape[0], lp.n))
    coef[:, has_t] = ptdf[:, t_col[has_t]] * lp.direction[has_t]
    coef[np.abs(coef) < tol] = 0.0
    t_rows = np.flatnonzero(np.any(coef != 0.0, axis=1))
    m.L = pyo.RangeSet(0, len(t_rows) - 1)
    m.t_lo = pyo.Param(m.L, mutable=True, initialize=-1e9)
    m.t_hi = pyo.Param(m.L, mutable=True, initialize=1e9)
    m.t_up = pyo.Var(m.L, within=pyo.NonNegativeReals)
    m.t_dn = pyo.Var(m.L, within=pyo.NonNegativeReals)

    def t_rule(m, k):
        row = coef[t_rows[k]]
        nz = np.flatnonzero(row)
        body = LinearExpression(
            linear_coefs=row[nz].tolist() + [-1.0, 1.0],
            linear_vars=[m.x[int(p)] for p in nz] + [m.t_up[k], m.t_dn[k]])
        return pyo.inequality(m.t_lo[k], body, m.t_hi[k])

    m.t_branch = pyo.Constraint(m.L, rule=t_rule)
    for k in range(len(t_rows)):
        lp.add_cost([pen_overload, pen_overload], [m.t_up[k], m.t_dn[k]])
    lp.rows["t"] = RowFamily(m.t_branch, len(t_rows), m.t_lo, m.t_hi)
    return t_rows


def define_interface_voltage(lp: MarketLP, drows: list[DRows]) -> None:
    """``u_g``: the move of D grid g's interface voltage (one row per grid with ``hv``;
    fixed to 0 otherwise). Every voltage row of the grid follows it."""
    m = lp.model
    m.G = pyo.RangeSet(0, len(drows) - 1)
    m.u = pyo.Var(m.G)
    for g, dr in enumerate(drows):
        if dr.hv is None:
            m.u[g].fix(0.0)

    def hv_rule(m, g):
        dr = drows[g]
        if dr.hv is None:
            return pyo.Constraint.Skip
        c = dr.hv * lp.direction
        nz = np.flatnonzero(np.abs(c) >= COEF_TOL)
        return LinearExpression(linear_coefs=[1.0] + (-c[nz]).tolist(),
                                linear_vars=[m.u[g]] + [m.x[int(p)] for p in nz]) == 0.0

    m.hv = pyo.Constraint(m.G, rule=hv_rule)
    lp.extra_rows["hv"] = [m.hv[g] for g, dr in enumerate(drows) if dr.hv is not None]
    lp.hv_grids = [g for g, dr in enumerate(drows) if dr.hv is not None]


def _sparse_rows(drows: list[DRows], attr: str, d: np.ndarray) -> list[tuple]:
    """(grid, row, pools, coefficients) of every D row with a coefficient >= COEF_TOL."""
    out = []
    for g, dr in enumerate(drows):
        c = getattr(dr, attr) * d[dr.pools]
        for r in range(c.shape[0]):
            nz = np.flatnonzero(np.abs(c[r]) >= COEF_TOL)
            if len(nz):
                out.append((g, r, dr.pools[nz], c[r, nz]))
    return out


def define_distribution_voltage(lp: MarketLP, drows: list[DRows],
                                pen_voltage_bus_h: float) -> list[tuple[int, int]]:
    """Upper and lower voltage rows of the D buses (with the interface voltage's move) and
    their slacks. Returns (grid, bus) of each row pair."""
    m = lp.model
    vb = _sparse_rows(drows, "dv", lp.direction)
    m.V = pyo.RangeSet(0, len(vb) - 1)
    m.v_hi = pyo.Param(m.V, mutable=True, initialize=1e9)
    m.v_lo = pyo.Param(m.V, mutable=True, initialize=-1e9)
    m.ovu = pyo.Var(m.V, within=pyo.NonNegativeReals)
    m.ovd = pyo.Var(m.V, within=pyo.NonNegativeReals)

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

    m.v_up = pyo.Constraint(m.V, rule=v_up)
    m.v_dn = pyo.Constraint(m.V, rule=v_dn)
    pen_v = pen_voltage_bus_h / VOLTAGE_STEP_PU
    for k in range(len(vb)):
        lp.add_cost([pen_v, pen_v], [m.ovu[k], m.ovd[k]])
    lp.rows["v_up"] = RowFamily(m.v_up, len(vb), None, m.v_hi)
    lp.rows["v_dn"] = RowFamily(m.v_dn, len(vb), m.v_lo, None)
    return [(g, r) for g, r, _, _ in vb]


def define_distribution_loading(lp: MarketLP, drows: list[DRows],
                                pen_overload: float) -> list[tuple[int, int]]:
    """Loading rows of the D branches (percent) and their slacks, priced per percentage point
    at the overload price times the branch rating / 100. Returns (grid, branch) per row."""
    m = lp.model
    lb = _sparse_rows(drows, "dl", lp.direction)
    m.B = pyo.RangeSet(0, len(lb) - 1)
    m.l_hi = pyo.Param(m.B, mutable=True, initialize=1e9)
    m.ovl = pyo.Var(m.B, within=pyo.NonNegativeReals)

    def l_up(m, k):
        _, _, pools, c = lb[k]
        return LinearExpression(linear_coefs=c.tolist() + [-1.0],
                                linear_vars=[m.x[int(p)] for p in pools] + [m.ovl[k]]
                                ) <= m.l_hi[k]

    m.l_up = pyo.Constraint(m.B, rule=l_up)
    for k, (g, r, _, _) in enumerate(lb):
        lp.add_cost([pen_overload * drows[g].rating_mva[r] / 100.0], [m.ovl[k]])
    lp.rows["l_up"] = RowFamily(m.l_up, len(lb), None, m.l_hi)
    return [(g, r) for g, r, _, _ in lb]


def define_objective(lp: MarketLP) -> None:
    """The sum of every family's cost terms, minimised."""
    lp.model.obj = pyo.Objective(
        expr=LinearExpression(linear_coefs=lp.cost_coefs, linear_vars=lp.cost_vars),
        sense=pyo.minimize)
