"""The screening's arithmetic for `coordination/lp.py`: how far each network row of a market LP
can move over the box of the step's offers, and the sparse row surgery a refresh needs.

A screenable row r (an inequality of the T branches, D voltages or D loadings) reads
``A_r x + b_r u_g + slack``, where ``u_g = c_g x`` is its D grid's interface-voltage move (the
grid's ``hv`` row) and the slack is the row's own penalised column. With the slack at 0 and
``0 <= x <= mw``, its activity reaches from ``-max(-(A_r + b_r c_g) x)`` to
``max((A_r + b_r c_g) x)``, each maximum a sum over pools of ``max(s (A_rp + b_r c_gp), 0)
mw_p``. Split per row into the pools of its own pattern (`Reach.b`, recomputed only for rows a
refresh changed) and one sum per grid and side over all pools, this costs two sparse products
per step. `MarketLP` leaves out of HiGHS the rows whose reach stays clear of both bounds
(`reaches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

SCREEN_TOL = 1e-6  # a row is left out if its reach stays this far (relative) from its bounds


@dataclass
class Reach:
    """Per screenable row: its position in the LP, its grid's ``u`` column (-1: none) and
    coefficient, and the pattern part of its reach for each side (`b`)."""

    rows: np.ndarray  # LP row positions of the screenable rows
    grid: np.ndarray  # grid g of the u column each row follows (-1: none)
    bu: np.ndarray  # the row's coefficient b_r of that u
    c: np.ndarray  # (grids, pools): u_g = c_g x
    hv_rows: np.ndarray  # LP rows defining u (fixed: a refresh may not change them)
    at: np.ndarray  # per LP row, its position in `rows` (-1: not screenable)
    b: list[sp.csr_matrix] | None = None  # side +1 and -1: (rows, pools)

    @classmethod
    def build(cls, ax: sp.csr_matrix, ao: sp.csr_matrix, lb: np.ndarray, ub: np.ndarray,
              col_cost: np.ndarray, families: list[np.ndarray], hv: np.ndarray) -> Reach:
        """From the LP as it stands (``ax``: the rows' entries of x, ``ao``: every other
        entry; column bounds and costs): the screenable rows of `families` (LP row positions),
        less those that may never be left out (a column other than x, one ``u``, a fixed
        column or the row's own penalised slack), and the ``u`` each follows (the non-x column
        of an ``hv`` row, ``u = -(h / a) x``)."""
        n_row, n_col = ao.shape
        n = ax.shape[1]
        scr = (np.unique(np.concatenate(families)) if families
               else np.zeros(0, dtype=np.int64))
        u_col = np.full(n_col, -1)
        c = np.zeros((len(hv), n))
        for g, r in enumerate(hv):
            cols = ao.indices[ao.indptr[r]:ao.indptr[r + 1]]
            vals = ao.data[ao.indptr[r]:ao.indptr[r + 1]]
            if len(cols) == 1:
                u_col[cols[0]] = g
                c[g] = -ax[r].toarray().ravel() / vals[0]
        n_in = np.diff(ao.tocsc().indptr)  # rows each non-x column appears in
        fixed = (lb == 0.0) & (ub == 0.0)
        slack = (lb == 0.0) & (col_cost > 0.0) & (n_in == 1)
        sub = ao[scr].tocoo()
        grid = np.full(len(scr), -1)
        coef_u = np.zeros(len(scr))
        ok = np.ones(len(scr), dtype=bool)
        is_u = u_col[sub.col] >= 0
        ok[sub.row[~is_u & ~fixed[sub.col] & ~slack[sub.col]]] = False
        n_u = np.bincount(sub.row[is_u], minlength=len(scr))  # at most one u column per row
        ok &= n_u <= 1
        grid[sub.row[is_u]] = u_col[sub.col[is_u]]
        coef_u[sub.row[is_u]] = sub.data[is_u]
        rows = scr[ok]
        at = np.full(n_row, -1)
        at[rows] = np.arange(len(rows))
        reach = cls(rows, grid[ok], coef_u[ok], c, np.asarray(hv, dtype=np.int64), at)
        reach.b = reach._coefs(ax, np.arange(len(rows)))
        return reach

    def _coefs(self, ax: sp.csr_matrix, sub: np.ndarray) -> list[sp.csr_matrix]:
        """Per side s = +1/-1, for the screenable rows `sub` (positions in `rows`), the part of
        max over the box of s (A_r + b_r c_g) x that depends on the row's own pattern:
        B_s[r, p] = max(s A_rp + s b_r c_gp, 0) - max(s b_r c_gp, 0) (the rest, over all
        pools, is |b_r| times one sum per grid and side, `bounds`)."""
        a = ax[self.rows[sub]].tocsr()
        row = np.repeat(np.arange(len(sub)), np.diff(a.indptr))
        return [sp.csr_matrix((data, a.indices.copy(), a.indptr.copy()),
                              shape=(len(sub), ax.shape[1]))
                for data in self._parts(a.data, a.indices, sub[row])]

    def _parts(self, a: np.ndarray, pool: np.ndarray, at: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """`_coefs`'s entries of both sides for the entries ``a`` (coefficients of x) in the
        pools `pool` of the screenable rows `at` (positions in `rows`), one per entry."""
        cu = np.zeros(len(a))
        if len(self.c):
            g = self.grid[at]
            # c[g, p] read through its flat index (a 2-D fancy index costs twice as much)
            c = self.c.ravel().take(np.maximum(g, 0) * self.c.shape[1] + pool)
            cu = np.where(g >= 0, self.bu[at] * c, 0.0)
        total = a + cu  # s * (a + cu) below is this or its negative, exactly
        return (np.maximum(total, 0.0) - np.maximum(cu, 0.0),
                np.maximum(-total, 0.0) - np.maximum(-cu, 0.0))

    def _write_run(self, a: np.ndarray, pool: np.ndarray, at: np.ndarray, lens: np.ndarray,
                   out: list[np.ndarray]) -> None:
        """`_parts` of one run of rows `at` (entries ``a`` in pools `pool`, `lens` per row)
        written into `out` (both sides). Rows of one grid's family share their pools, ``u``
        and its coefficient: then ``b_r c_gp`` is one row of values for the whole run, and the
        same operations run on the (rows, pools) block, broadcast: the same numbers."""
        n = int(lens[0]) if len(lens) else 0
        g, bu = self.grid[at], self.bu[at]
        same = (n > 0 and np.all(lens == n) and np.all(g == g[0]) and np.all(bu == bu[0])
                and (len(at) == 1 or np.array_equal(pool[n:], pool[:-n])))
        if not same:
            for o, data in zip(out, self._parts(a, pool, np.repeat(at, lens)), strict=True):
                o[:] = data
            return
        a = a.reshape(len(at), n)
        if len(self.c) and g[0] >= 0:
            cu = bu[0] * self.c[g[0]].take(pool[:n])
        else:
            cu = np.zeros(n)
        total = a + cu
        plus, minus = (o.reshape(len(at), n) for o in out)
        np.subtract(np.maximum(total, 0.0), np.maximum(cu, 0.0), out=plus)
        np.negative(total, out=total)
        np.subtract(np.maximum(total, 0.0), np.maximum(-cu, 0.0), out=minus)

    @cached_property
    def c_pos(self) -> np.ndarray:
        """The positive parts of `c` (fixed: the hv rows never change)."""
        return np.maximum(self.c, 0.0)

    @cached_property
    def c_neg(self) -> np.ndarray:
        """The positive parts of `-c`."""
        return np.maximum(-self.c, 0.0)

    def update(self, ax: sp.csr_matrix, lp_rows: np.ndarray) -> None:
        """The LP rows `lp_rows` have new coefficients of x in ``ax``: renew their part. Where
        the rows kept their pattern (a refresh of the same D rows), the parts are computed
        from ``ax``'s entries and written into `b` in place, run by run of consecutive rows
        (a grid's rows of one family are one run: slices of both matrices' arrays);
        otherwise the rows are cut out and replaced (`replace_rows`)."""
        at = self.at[lp_rows]
        if not np.any(at >= 0):
            return
        sub = np.sort(at[at >= 0])  # `MarketLP.set_coefs` takes each row once
        if np.any(sub[1:] == sub[:-1]):
            sub = np.unique(sub)
        rows = self.rows[sub]
        lens = ax.indptr[rows + 1] - ax.indptr[rows]
        b0 = self.b[0]
        if np.array_equal(b0.indptr[sub + 1] - b0.indptr[sub], lens):
            # runs of consecutive rows that also share their length, u, u's coefficient and
            # first pool (one grid's rows of one family: `_write_run`'s block)
            first = (ax.indices[np.minimum(ax.indptr[rows], ax.nnz - 1)] if ax.nnz
                     else np.zeros(len(rows), dtype=np.int64))
            cut = np.flatnonzero((np.diff(sub) != 1) | (np.diff(rows) != 1)
                                 | (np.diff(lens) != 0) | (np.diff(self.grid[sub]) != 0)
                                 | (np.diff(self.bu[sub]) != 0) | (np.diff(first) != 0)) + 1
            runs = []
            for s, e in zip(np.r_[0, cut].tolist(), np.r_[cut, len(sub)].tolist(),
                            strict=True):
                src = slice(int(ax.indptr[rows[s]]), int(ax.indptr[rows[e - 1] + 1]))
                dst = slice(int(b0.indptr[sub[s]]), int(b0.indptr[sub[e - 1] + 1]))
                if not np.array_equal(b0.indices[dst], ax.indices[src]):
                    break
                runs.append((s, e, src, dst))
            else:
                done: dict[tuple, tuple] = {}
                for s, e, src, dst in runs:
                    a, pool = ax.data[src], ax.indices[src]
                    out = [b.data[dst] for b in self.b]
                    # a run equal to one written before (a grid's v_dn rows are its v_up
                    # rows: same entries, u and coefficient) gets that run's parts
                    key = (e - s, int(lens[s]), int(self.grid[sub[s]]), float(self.bu[sub[s]]))
                    twin = done.get(key)
                    if (twin is not None and np.array_equal(twin[1], pool)
                            and np.array_equal(twin[0], a)):
                        for o, t in zip(out, twin[2], strict=True):
                            o[:] = t
                        continue
                    self._write_run(a, pool, sub[s:e], lens[s:e], out)
                    done[key] = (a, pool, out)
                return
        blocks = self._coefs(ax, sub)
        self.b = [replace_rows(b, sub, blk) for b, blk in zip(self.b, blocks, strict=True)]

    def bounds(self, mw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest activity each screenable row can reach with x in [0, mw] (its
        slack at 0, ``u`` following x)."""
        out = []
        for k, s in enumerate((1.0, -1.0)):
            top = self.b[k] @ mw
            if len(self.c):
                sb = s * self.bu
                per_grid = (self.c_pos @ mw, self.c_neg @ mw)
                g = np.maximum(self.grid, 0)
                whole = np.abs(sb) * np.where(sb > 0, per_grid[0][g], per_grid[1][g])
                top = top + np.where(self.grid >= 0, whole, 0.0)
            out.append(top)
        return -out[1], out[0]


    def clear_of(self, at: np.ndarray, x: np.ndarray, u: np.ndarray, mw: np.ndarray,
                 gap: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Whether the screenable rows at positions `at`, clear of their bounds by `gap` over
        the box (reach `width`), stay clear at the solution (`x` inside ``[0, mw]``, `u` the
        interface-voltage columns, the rows' other columns 0): their activity is within the
        reach but for ``|b_r| |u_g - c_g x|`` (HiGHS's residual on the ``u`` rows) and
        rounding, below ``1e-9`` of the sum of the magnitudes of the terms (see
        `MarketLP._sure`)."""
        slack = width[at].copy()
        if len(self.c):
            g = self.grid[at]
            has_u = g >= 0
            res = np.abs(u - self.c @ x)
            size = np.abs(self.c) @ mw + np.abs(u)
            bu = np.abs(self.bu[at])
            gg = np.maximum(g, 0)
            slack += np.where(has_u, 2.0 * bu * size[gg], 0.0)
            tol = np.where(has_u, bu * res[gg], 0.0) + 1e-9 * (1.0 + slack)
        else:
            tol = 1e-9 * (1.0 + slack)
        return gap[at] > tol

def replace_rows(m: sp.csr_matrix, rows: np.ndarray, block: sp.csr_matrix) -> sp.csr_matrix:
    """`m` with its rows `rows` replaced by the rows of `block` (in that order). Where the
    block keeps the rows' pattern (the same columns, in order), its values are written into
    `m` in place; otherwise the arrays are cut at the runs of consecutive rows (a grid's rows
    of one family are one run) and joined again with the block's: a copy of each array, the
    entries in the same order as a row-by-row rebuild."""
    block = sp.csr_matrix(block)
    rows = np.asarray(rows, dtype=np.int64)
    if _write_runs(m, rows, block):
        return m
    at = row_entries(m, rows, np.diff(block.indptr))
    if at is not None and np.array_equal(m.indices[at], block.indices):
        m.data[at] = block.data
        return m
    order = np.argsort(rows, kind="stable")
    if np.any(np.diff(order) < 0):
        rows, block = rows[order], block[order]
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    mp, bp = m.indptr, block.indptr
    data, index, lens = [], [], []
    prev = 0
    for s, e in zip(np.r_[0, cut].tolist(), np.r_[cut, len(rows)].tolist(), strict=True):
        r0 = int(rows[s])
        data += [m.data[mp[prev]:mp[r0]], block.data[bp[s]:bp[e]]]
        index += [m.indices[mp[prev]:mp[r0]], block.indices[bp[s]:bp[e]]]
        lens += [np.diff(mp[prev:r0 + 1]), np.diff(bp[s:e + 1])]
        prev = int(rows[e - 1]) + 1
    data.append(m.data[mp[prev]:])
    index.append(m.indices[mp[prev]:])
    lens.append(np.diff(mp[prev:]))
    indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lens), out=indptr[1:])
    idx_type = np.int64 if indptr[-1] > np.iinfo(np.int32).max else np.int32
    return sp.csr_matrix((np.concatenate(data), np.concatenate(index).astype(idx_type),
                          indptr.astype(idx_type)), shape=m.shape)


def _write_runs(m: sp.csr_matrix, rows: np.ndarray, block: sp.csr_matrix) -> bool:
    """`replace_rows` in place where `rows` are a few runs of consecutive rows whose patterns
    the block keeps: each run's entries are one slice of ``m``'s arrays. False (``m`` not
    touched) if a row's entries differ in number or columns."""
    mp, bp = m.indptr, block.indptr
    if not np.array_equal(mp[rows + 1] - mp[rows], np.diff(bp)):
        return False
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    runs = []
    for s, e in zip(np.r_[0, cut].tolist(), np.r_[cut, len(rows)].tolist(), strict=True):
        own = slice(int(mp[rows[s]]), int(mp[rows[e - 1] + 1]))
        new = slice(int(bp[s]), int(bp[e]))
        if not np.array_equal(m.indices[own], block.indices[new]):
            return False
        runs.append((own, new))
    for own, new in runs:
        m.data[own] = block.data[new]
    return True


def row_entries(m: sp.csr_matrix, rows: np.ndarray,
                 lengths: np.ndarray | None = None) -> np.ndarray | None:
    """Positions in ``m.data`` of the entries of the rows `rows`, row after row, or None if
    `lengths` (entries per row) is given and differs from the rows' own."""
    start, end = m.indptr[rows], m.indptr[np.asarray(rows) + 1]
    own = end - start
    if lengths is not None and not np.array_equal(own, lengths):
        return None
    total = int(own.sum())
    first = np.cumsum(own) - own  # offset of each row's first entry in the result
    return np.repeat(start - first, own) + np.arange(total)


def reaches(amin: np.ndarray, amax: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Rows whose activity range [amin, amax] comes within ``SCREEN_TOL`` (relative) of a
    finite bound."""
    def margin(b: np.ndarray) -> np.ndarray:
        return SCREEN_TOL * (1.0 + np.abs(np.where(np.isfinite(b), b, 0.0)))
    return (amax >= hi - margin(hi)) | (amin <= lo + margin(lo))


def clearance(amin: np.ndarray, amax: np.ndarray, lo: np.ndarray, hi: np.ndarray
              ) -> np.ndarray:
    """How far the activity range [amin, amax] stays from coming within ``SCREEN_TOL`` of a
    finite bound (`reaches`): positive where `reaches` is False, +inf without finite bounds."""
    def margin(b: np.ndarray) -> np.ndarray:
        return SCREEN_TOL * (1.0 + np.abs(np.where(np.isfinite(b), b, 0.0)))
    with np.errstate(invalid="ignore"):
        return np.minimum((hi - margin(hi)) - amax, amin - (lo + margin(lo)))


def near(act: np.ndarray, amin: np.ndarray, amax: np.ndarray, lo: np.ndarray, hi: np.ndarray,
         share: float) -> np.ndarray:
    """Rows whose activity `act` (at the last solution, this step's coefficients and bounds)
    comes within `share` of their reach width ``amax - amin`` of a finite bound: the rows the
    previous-solution rule keeps in HiGHS (the others are checked after the solve)."""
    m = share * np.maximum(amax - amin, 0.0)
    return reaches(act - m, act + m, lo, hi)
