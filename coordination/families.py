"""The market LP's constraint families, one ``define_*`` function each (as in PyPSA's
``optimization/constraints.py``); the formulation and what changes per step are described in
``coordination/lp.py``, whose `MarketLP` they fill with arrays (columns: bounds and costs;
rows: sparse entries and bounds), built with numpy rather than row by row."""

from __future__ import annotations

import numpy as np
from tsodso.coordination.lp import COEF_TOL, VOLTAGE_STEP_PU, DRows, MarketLP, _cat

INF = np.inf
BIG = 1e9  # build-time bound of the rows whose bounds every step sets


def _entries(*blocks: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (row, column, coefficient) arrays of several blocks of entries, each block
    ``(rows, columns, coefficients)`` (scalars broadcast); `MarketLP.add_rows` orders a row's
    entries block by block, as the terms of the row are written."""
    parts = [np.broadcast_arrays(np.atleast_1d(np.asarray(r, dtype=np.int64)),
                                 np.asarray(c, dtype=np.int64), np.asarray(v, dtype=float))
             for r, c, v in blocks]
    return tuple(np.concatenate([p[i] for p in parts]) if parts else np.zeros(0)
                 for i in range(3))


def define_offers(lp: MarketLP) -> None:
    """Columns ``x`` (activated MW per pool, upper bound = offer) and their cost."""
    lp.add_columns("x", lp.n, 0.0, 0.0, cost=0.0)


def define_balance(lp: MarketLP, areas: dict[str, np.ndarray], pen_imbalance: float) -> None:
    """One balance row per area (rhs: the area's need) with short/long slacks:
    ``sum_{p in a} dir_p x_p + short_a - long_a = need_a``."""
    n_a = len(areas)
    x = lp.columns["x"]
    short = lp.add_columns("short", n_a, 0.0, INF, pen_imbalance)
    long = lp.add_columns("long", n_a, 0.0, INF, pen_imbalance)
    pools = [np.asarray(p, dtype=np.int64) for p in areas.values()]
    sizes = [len(p) for p in pools]
    p = np.concatenate(pools) if pools else np.zeros(0, dtype=np.int64)
    a = np.repeat(np.arange(n_a), sizes)
    lp.add_rows("balance", n_a, *_entries((a, x[p], lp.direction[p]), (np.arange(n_a), short, 1.0),
                                          (np.arange(n_a), long, -1.0)), 0.0, 0.0)


def define_parties(lp: MarketLP, parties: list[str], pen_imbalance: float,
                   all_bought: bool = False) -> None:
    """Market parties (BRPs) buying activations against their own imbalance, cleared per
    direction: ``y[p]``, the part of ``x[p]`` the parties bought, and one balance row per
    direction (unserved at the imbalance price), whose need is the sum of the needs of the
    parties needing that direction (`side_needs`)::

        y_p <= x_p;  sum_{p: dir_p = d} dir_p y_p + qs_d - ql_d = qneed_d   (d = up, down)

    This is the per-party LP (``sum_b y_bp <= x_p``, one row per party) without its
    degenerate part, at the same optimal cost and ``x``: the parties value their open
    positions at the same price, so a party never gains from buying against its need, and
    parties needing the same direction only share that direction's pools, which the per-party
    LP left to the simplex path. Each party gets its share of its side's purchase in
    proportion to its need (`FlexMarket.clear`).

    `all_bought` (a market of parties alone, no balance areas): every activation is bought by
    the parties of its direction, ``y = x``, so there are no ``y`` columns and share rows and
    the direction rows hold ``x``: the market makes no activation nobody buys (no
    counter-trade to keep the grid rows no worse, which nobody would pay for)."""
    n = lp.n if parties and not all_bought else 0
    x = lp.columns["x"]
    y = lp.add_columns("y", n, 0.0, INF)
    qs = lp.add_columns("q_short", 2 if parties else 0, 0.0, INF, pen_imbalance)
    ql = lp.add_columns("q_long", 2 if parties else 0, 0.0, INF, pen_imbalance)
    if not parties:
        return
    side = (lp.direction < 0).astype(np.int64)  # row 0: up pools, row 1: down pools
    if not all_bought:
        pools = np.arange(n)
        lp.add_rows("share", n, *_entries((pools, y, 1.0), (pools, x, -1.0)), -INF, 0.0,
                    extra=True)
    lp.add_rows("party", 2, *_entries((side, x if all_bought else y, lp.direction),
                                      (np.arange(2), qs, 1.0), (np.arange(2), ql, -1.0)),
                0.0, 0.0)


def side_needs(need: np.ndarray) -> np.ndarray:
    """The needs of the direction rows of `define_parties` (MW, up > 0): the sum of the
    parties' positive needs and the sum of their negative ones."""
    need = np.asarray(need, dtype=float)
    return np.array([need[need > 0].sum(), need[need < 0].sum()])


def define_transmission(lp: MarketLP, t_col: np.ndarray, ptdf: np.ndarray,
                        pen_overload: float, tol: float = COEF_TOL) -> np.ndarray:
    """T branch rows through the PTDF (pools with ``t_col < 0`` have no T effect) with
    up/down overload slacks, ``lo_l <= sum_p PTDF[l, t_p] dir_p x_p - up_l + dn_l <= hi_l``;
    only branches some pool can move (a coefficient ``>= tol``). Returns those branches
    (PTDF rows) in LP row order."""
    has_t = t_col >= 0
    coef = np.zeros((ptdf.shape[0], lp.n))
    coef[:, has_t] = ptdf[:, t_col[has_t]] * lp.direction[has_t]
    coef[np.abs(coef) < tol] = 0.0
    t_rows = np.flatnonzero(np.any(coef != 0.0, axis=1))
    n_l = len(t_rows)
    up = lp.add_columns("t_up", n_l, 0.0, INF, pen_overload)
    dn = lp.add_columns("t_dn", n_l, 0.0, INF, pen_overload)
    sub = coef[t_rows]
    k, p = np.nonzero(sub)
    lp.add_rows("t", n_l, *_entries((k, lp.columns["x"][p], sub[k, p]),
                                    (np.arange(n_l), up, -1.0), (np.arange(n_l), dn, 1.0)),
                -BIG, BIG)
    return t_rows


def define_interface_voltage(lp: MarketLP, drows: list[DRows]) -> None:
    """``u_g``: the move of D grid g's interface voltage, ``u_g = sum_p hv_g[p] dir_p x_p``
    (one row per grid with ``hv``; fixed to 0 otherwise). Every voltage row of the grid
    follows it."""
    fixed = np.array([dr.hv is None for dr in drows], dtype=bool)
    u = lp.add_columns("u", len(drows), np.where(fixed, 0.0, -INF), np.where(fixed, 0.0, INF))
    lp.hv_grids = np.flatnonzero(~fixed).tolist()
    x = lp.columns["x"]
    blocks = []
    for k, g in enumerate(lp.hv_grids):
        c = drows[g].hv * lp.direction
        nz = np.flatnonzero(np.abs(c) >= COEF_TOL)
        blocks += [(k, u[g], 1.0), (np.full(len(nz), k), x[nz], -c[nz])]
    lp.add_rows("hv", len(lp.hv_grids), *_entries(*blocks), 0.0, 0.0, extra=True)


def _sparse_rows(drows: list[DRows], attr: str, d: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The D rows with a coefficient >= COEF_TOL: grid and row (bus or branch) of each, and
    their entries (LP row among them, pool, coefficient ``attr * dir``), row by row."""
    grid, row, ent = [], [], []
    for g, dr in enumerate(drows):
        c = getattr(dr, attr) * d[dr.pools]
        big = np.abs(c) >= COEF_TOL
        rows = np.flatnonzero(big.any(axis=1))
        r, j = np.nonzero(big[rows])
        ent.append((r + sum(len(x) for x in row), dr.pools[j], c[rows[r], j]))
        grid.append(np.full(len(rows), g))
        row.append(rows)
    ints = [_cat(xs, np.int64) for xs in (grid, row, [e[0] for e in ent], [e[1] for e in ent])]
    return ints[0], ints[1], (ints[2], ints[3], _cat([e[2] for e in ent]))


def define_distribution_voltage(lp: MarketLP, drows: list[DRows],
                                pen_voltage_bus_h: float) -> list[tuple[int, int]]:
    """Upper and lower voltage rows of the D buses (with the interface voltage's move) and
    their slacks. Returns (grid, bus) of each row pair::

        sum_p dV[r, p] dir_p x_p + u_g - ovu_r <= vmax_r - v0_r
        sum_p dV[r, p] dir_p x_p + u_g + ovd_r >= vmin_r - v0_r
    """
    grid, bus, (k, p, c) = _sparse_rows(drows, "dv", lp.direction)
    n_v = len(grid)
    pen_v = pen_voltage_bus_h / VOLTAGE_STEP_PU
    ovu = lp.add_columns("ovu", n_v, 0.0, INF, pen_v)
    ovd = lp.add_columns("ovd", n_v, 0.0, INF, pen_v)
    x, rows = lp.columns["x"], np.arange(n_v)
    u = lp.columns["u"][grid] if n_v else np.zeros(0, dtype=np.int64)
    # a fixed u (no interface coupling) is placed in the row but has no entry (coefficient 0)
    cu = np.array([dr.hv is not None for dr in drows], dtype=float)[grid]
    lp.add_rows("v_up", n_v, *_entries((k, x[p], c), (rows, u, cu), (rows, ovu, -1.0)),
                -INF, BIG)
    lp.add_rows("v_dn", n_v, *_entries((k, x[p], c), (rows, u, cu), (rows, ovd, 1.0)),
                -BIG, INF)
    return list(zip(grid.tolist(), bus.tolist(), strict=True))


def define_distribution_loading(lp: MarketLP, drows: list[DRows],
                                pen_overload: float) -> list[tuple[int, int]]:
    """Loading rows of the D branches (percent) and their slacks, priced per percentage point
    at the overload price times the branch rating / 100. Returns (grid, branch) per row::

        sum_p dL[b, p] dir_p x_p - ovl_b <= lmax_b - l0_b
    """
    grid, br, (k, p, c) = _sparse_rows(drows, "dl", lp.direction)
    n_b = len(grid)
    start = np.cumsum([0] + [len(dr.rating_mva) for dr in drows])
    rating = (np.concatenate([dr.rating_mva for dr in drows]).astype(float)[start[grid] + br]
              if n_b else np.zeros(0))
    ovl = lp.add_columns("ovl", n_b, 0.0, INF, pen_overload * rating / 100.0)
    lp.add_rows("l_up", n_b, *_entries((k, lp.columns["x"][p], c), (np.arange(n_b), ovl, -1.0)),
                -INF, BIG)
    return list(zip(grid.tolist(), br.tolist(), strict=True))


def define_objective(lp: MarketLP) -> None:
    """The sum of every family's cost terms, minimised."""
    lp.objective = True
