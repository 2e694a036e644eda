"""The one market LP core: the persistent HiGHS solver, row screening, tie breaking.

Every market of the schemes (the TSO's centralized market, the DSOs' local markets, the common
TSO-DSO market) is one LP over columns ``x_p`` (activated MW per pool of bid slots, in the
pool's direction ``dir_p = +1`` up / ``-1`` down), built once per run from the families of
``coordination/families.py``, each added by one ``define_*`` function (one named family per
function, as in PyPSA's ``optimization/constraints.py``)::

    define_offers                 x_p in [0, mw_p]; cost sum_p price_p x_p
    define_balance                sum_{p in a} dir_p x_p + short_a - long_a = need_a   (area a)
    define_parties                y_p <= x_p;  sum_{p: dir_p = d} dir_p y_p + qs_d - ql_d = qneed_d
    define_transmission           lo_l <= sum_p PTDF[l, t_p] dir_p x_p - up_l + dn_l <= hi_l
    define_interface_voltage      u_g = sum_p hv_g[p] dir_p x_p           (D grid g's HV bus)
    define_distribution_voltage   sum_p dV[r, p] dir_p x_p + u_g - ovu_r <= vmax_r - v0_r
                                  sum_p dV[r, p] dir_p x_p + u_g + ovd_r >= vmin_r - v0_r
    define_distribution_loading   sum_p dL[b, p] dir_p x_p - ovl_b <= lmax_b - l0_b   (%)
    define_objective              min sum price_p x_p + pen_imb (short + long + qs + ql)
                                      + pen_T (up + dn) + pen_V (ovu + ovd) + sum_b pen_L_b ovl_b

in MW and EUR/h (reported costs are x step_h). The slacks (all >= 0) keep every step feasible.
``hi_l = limit_l - flow0_l``, ``lo_l = -limit_l - flow0_l``; T branches no pool can move (all
coefficients below the family's tolerance) are left out. pen_V is per pu (the scenario's price
per bus-hour buys ``VOLTAGE_STEP_PU``), pen_L_b per percentage point (the overload price times
the branch rating / 100). D rows whose sensitivities are all below ``COEF_TOL`` are left out;
``u_g`` is fixed to 0 for a grid without interface-voltage coupling.

Per step only numbers change: offered MW (the upper bounds of ``x``), prices (the costs of
``x``), needs, the right-hand sides of the network rows and, when the D grids' linear model is
refreshed, the D rows' coefficients of ``x`` (:meth:`MarketLP.set_coefs`). Each family adds
its columns (bounds, costs) and rows (sparse entries, bounds) as arrays
(:meth:`MarketLP.add_columns`, :meth:`MarketLP.add_rows`), recorded in ``MarketLP.columns``
and ``MarketLP.rows``. The LP is assembled once and handed to HiGHS with one ``passModel``
(:meth:`MarketLP.attach`); the whole LP is then kept here as arrays, and the step's numbers
are written straight into the HiGHS model with a few vectorised calls, which is re-solved
from the previous basis.

Screening: HiGHS holds only the network rows that can bind. Before each solve, every row of the
inequality families ``SCREENED`` (T branches, D voltages and loadings) gets its reach: the
lowest and highest activity over the box ``0 <= x <= mw`` of the step's offers, with ``u_g``
following ``x`` through its row (the row's coefficients plus the grid's ``hv`` coefficients,
exactly) and the row's own slack at 0. A row whose reach stays clear of both bounds (by
``reach.SCREEN_TOL``, relative) cannot bind at any feasible point, so it is left out of HiGHS's
model. The box is wide where offers are large, so with ``near_share`` set (the default, 0.02) a
row the box lets in is held only if its activity at the last solution (this step's coefficients
and bounds) comes within ``near_share`` of its reach width of a bound (`reach.near`); the
others are left to the check below (the centralized market and both of `integrated`'s keep the
box alone: see `market.py`, `schemes/integrated.py`). Rows whose slack is not basic in HiGHS's
basis stay in. After the solve every left-out row is checked against the solution; one that
comes within the margin is added and the LP solved again (with the box reach alone, a left-out
row whose reach stays clear of its bounds by more than HiGHS's residual on the ``u`` rows and
rounding can take no solution inside the box near them, and is not read: `MarketLP._sure`). The
optimum is therefore the full LP's: its primal solution satisfies every row, and the left-out
rows are strictly slack there, so their duals (reported as 0) are the full LP's too. Rows that
must come in are added to HiGHS's model (``addRows``, after its rows, basic; its basis kept).
HiGHS is given a new model (arrays, one ``passModel``, the previous basis mapped on it, new
rows basic) only when ``SCREEN_SURPLUS`` of its rows could go or when a refresh changed
coefficients of rows it holds (once, at the next solve's screening). Rows whose other columns
are not ``x``, one ``u``, fixed columns or their own penalised slack are never left out.

Ties: equal prices are ranked by pool index (lower index activated first) through a cost
perturbation ``TIE_EPS * rank``, rank in (price, index) order so different prices keep their
order; the optimum is then unique and independent of the warm-start history. Two policies:
``"always"`` perturbs every solve and reports the duals of the perturbed LP (the D and common
markets); ``"offered"`` perturbs only when offered pools share a price (rounded to 1e-6) and, with
``exact_prices``, re-solves from that basis at the true prices for the exact duals (normally
zero simplex iterations; the centralized market). The perturbation is at most
``TIE_EPS * n`` (0.02 EUR/MWh for 2,000 pools); costs and settlement use the true prices.

Robustness: every solve is checked (status, and reduced-cost signs against the bounds of every
column); a warm-started HiGHS 1.15 run that fails the check (seen: status "unknown", or a
claimed optimum that is not dual feasible, on tied prices; cf. ERGO-Code/HiGHS#1561, #3194) is
repeated from scratch on the same HiGHS model, its solver data and basis cleared
(``clearSolver``; presolve on, cold start, counted in ``n_cold_restarts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import highspy
import numpy as np
import scipy.sparse as sp
from tsodso.coordination.reach import (
    Reach,
    clearance,
    near,
    reaches,
    replace_rows,
    row_entries,
)

TIE_EPS = 1e-5  # EUR/MWh per rank step of the tie-breaking perturbation (above HiGHS tolerances)
COEF_TOL = 1e-7  # sensitivities below this (per MW) are left out of the rows
VOLTAGE_STEP_PU = 0.01  # one bus-hour penalty buys 0.01 pu of voltage for an hour
ZERO_MW = 1e-6  # reported MW below this are set to zero (solver noise)
RC_TOL = 1e-6  # EUR/MWh: reduced-cost sign tolerance of the optimality check (< TIE_EPS)
SCREENED = ("t", "v_up", "v_dn", "l_up")  # inequality families whose rows may be left out
SCREEN_SURPLUS = 0.3  # share of HiGHS's rows that could go before it gets the model without them
BASIC = highspy.HighsBasisStatus.kBasic
SMALL_COEF = 1e-9  # HiGHS's small_matrix_value: it drops matrix entries not above it


@dataclass
class DRows:
    """Linear constraints of one D grid at the sensitivities of its last linearisation
    (`FlexMarket.update_drows` replaces them when the D grids' linear model is refreshed)."""

    grid: str
    pools: np.ndarray  # pool indices of this grid (columns)
    dv: np.ndarray  # (buses, pools) pu per MW injected
    dl: np.ndarray  # (branches, pools) percentage points per MW injected
    rating_mva: np.ndarray  # (branches,)
    hv: np.ndarray | None = None  # (all pools,) pu change of the grid's interface voltage per
    #                               MW injected by each pool of the market: all its buses follow


@dataclass
class RowFamily:
    """Rows whose bounds change per step (`MarketLP.set_rows`): their count and their
    positions in the LP."""

    n: int
    index: np.ndarray


@dataclass
class Solution:
    """One checked optimum, in HiGHS's column and row order."""

    col: np.ndarray  # column values
    rc: np.ndarray  # reduced costs
    row_dual: np.ndarray  # per row of the whole LP (0 for rows left out of HiGHS)


@dataclass(eq=False)
class MarketLP:
    """A market LP: the columns and rows the ``define_*`` functions add as arrays, what each
    step changes, and (after :meth:`attach`) its HiGHS model.

    Build indices: ``columns[key]`` are the family's columns in the order they were added,
    ``rows[key].index`` and ``extra_rows[key]`` its rows (rows keep that order in HiGHS).
    After :meth:`attach`, ``col_index``/``row_index``/``extra_index`` give HiGHS positions
    (-1: a column no row and no cost term uses, left out of HiGHS)."""

    name: str
    direction: np.ndarray
    rows: dict[str, RowFamily] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    extra_rows: dict[str, np.ndarray] = field(default_factory=dict)  # constant rows by family
    cost_coefs: list = field(default_factory=list)  # objective terms: coefficient arrays
    cost_cols: list = field(default_factory=list)  # ... and their columns (build indices)
    hv_grids: list = field(default_factory=list)  # D grids with an interface-voltage row
    n_coef_updates: int = 0  # how often set_coefs changed the matrix
    n_solves: int = 0
    n_cold_restarts: int = 0
    n_rebuilds: int = 0  # how often HiGHS was given a new set of rows
    n_screen_misses: int = 0  # left-out rows a solution violated (then added, re-solved)
    screen: ClassVar[bool] = True  # False: HiGHS keeps every row (the full LP, a reference)
    near_share: float | None = 0.02  # None: the box reach alone (module docstring)

    def __post_init__(self) -> None:
        self.direction = np.asarray(self.direction, dtype=float)
        self.n = len(self.direction)
        self.n_cols = self.n_rows = 0
        self.highs: highspy.Highs | None = None
        self.objective = False  # define_objective: minimise the cost terms
        self._build: dict[str, list[np.ndarray]] = {k: [] for k in (
            "lb", "ub", "r", "c", "v", "lo", "hi")}
        self._mw = np.zeros(self.n)
        self._outdated = False  # a refresh changed rows HiGHS holds (passed at the next solve)
        self._last_col: np.ndarray | None = None  # the last solution (`near_share` screening)
        self._act_cache: tuple | None = None  # `_activity`'s products at the last column values

    def add_columns(self, key: str, n: int, lb: float | np.ndarray, ub: float | np.ndarray,
                    cost: float | np.ndarray | None = None) -> np.ndarray:
        """`n` columns of family `key` with bounds `lb`/`ub` (lb = ub: fixed) and, unless
        None, objective coefficients `cost`; returns their build indices."""
        idx = np.arange(self.n_cols, self.n_cols + n)
        self.n_cols += n
        self._build["lb"].append(np.broadcast_to(np.asarray(lb, dtype=float), (n,)))
        self._build["ub"].append(np.broadcast_to(np.asarray(ub, dtype=float), (n,)))
        self.columns[key] = idx
        if cost is not None:
            self.add_cost(np.broadcast_to(np.asarray(cost, dtype=float), (n,)), idx)
        return idx

    def add_rows(self, key: str, n: int, r: np.ndarray, c: np.ndarray, v: np.ndarray,
                 lo: float | np.ndarray, hi: float | np.ndarray, extra: bool = False
                 ) -> np.ndarray:
        """`n` rows ``lo <= sum_j v c_j <= hi`` of family `key` from their entries (row
        ``r`` in 0..n-1, column ``c`` (build index), coefficient ``v``); a row's entries keep
        the order given, which places the columns (`_assemble`); an entry of coefficient 0
        places its column without entering the matrix (a fixed ``u``, which the former pyomo
        build left out of the row). `extra`: constant rows (``extra_rows``), else a family
        whose bounds change per step (``rows``). Returns their row indices."""
        r = np.asarray(r, dtype=np.int64)
        order = np.argsort(r, kind="stable")
        b = self._build
        b["r"].append(r[order] + self.n_rows)
        b["c"].append(np.asarray(c, dtype=np.int64)[order])
        b["v"].append(np.asarray(v, dtype=float)[order])
        b["lo"].append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)))
        b["hi"].append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)))
        idx = np.arange(self.n_rows, self.n_rows + n)
        self.n_rows += n
        if extra:
            self.extra_rows[key] = idx
        else:
            self.rows[key] = RowFamily(n, idx)
        return idx

    def add_cost(self, coefs: np.ndarray, columns: np.ndarray) -> None:
        """Objective terms (coefficient, column) of a family."""
        self.cost_coefs.append(np.asarray(coefs, dtype=float))
        self.cost_cols.append(np.asarray(columns, dtype=np.int64))

    # --- solver -----------------------------------------------------------------------
    def _assemble(self) -> tuple[np.ndarray, sp.csc_matrix, np.ndarray]:
        """The HiGHS position of each built column (-1: in no row and no cost term), the
        matrix in HiGHS's column order and the columns' bounds and costs in that order.
        Columns are placed by first appearance in the rows, then in the objective: the order
        in which the former pyomo build (its persistent HiGHS interface) gave them to HiGHS,
        kept so that HiGHS gets the same LP and takes the same simplex path."""
        b = self._build
        r, c, v = _cat(b["r"], np.int64), _cat(b["c"], np.int64), _cat(b["v"])
        obj_c = (np.concatenate(self.cost_cols) if self.objective and self.cost_cols
                 else np.zeros(0, dtype=np.int64))
        seq = np.concatenate([c, obj_c])
        first = np.full(self.n_cols, len(seq))
        np.minimum.at(first, seq, np.arange(len(seq)))
        used = np.flatnonzero(first < len(seq))
        pos = np.full(self.n_cols, -1, dtype=np.int64)
        pos[used[np.argsort(first[used], kind="stable")]] = np.arange(len(used))
        keep = np.abs(v) > SMALL_COEF  # HiGHS would drop the others
        a = sp.csc_matrix((v[keep], (r[keep], pos[c[keep]])), shape=(self.n_rows, len(used)))
        a.sort_indices()
        order = np.empty(len(used), dtype=np.int64)
        order[pos[used]] = used
        cost = np.zeros(self.n_cols)
        if self.objective and self.cost_cols:
            np.add.at(cost, obj_c, np.concatenate(self.cost_coefs))
        return pos, a, np.stack([_cat(b["lb"])[order], _cat(b["ub"])[order], cost[order]])

    def attach(self) -> None:
        """Give HiGHS the LP built by the ``define_*`` functions, once (one ``passModel`` of
        the arrays, minimised; the build arrays are then freed), and keep it here as arrays:
        the whole LP (matrix, bounds, costs), of which HiGHS holds, from the first solve on,
        only the rows that can bind (see :meth:`_screen`)."""
        pos, a, (col_lb, col_ub, col_cost) = self._assemble()
        b = self._build
        rlo, rhi = _cat(b["lo"]), _cat(b["hi"])
        if self.highs is None:
            self.highs = highspy.Highs()
            self.highs.setOptionValue("output_flag", False)
            self.highs.setOptionValue("threads", 1)
        h = self.highs
        shape = a.shape
        self._sense, self._offset = int(highspy.ObjSense.kMinimize), 0.0
        status = h.passModel(shape[1], shape[0], a.nnz, int(highspy.MatrixFormat.kColwise),
                             self._sense, self._offset, col_cost, col_lb, col_ub, rlo, rhi,
                             a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data,
                             np.zeros(shape[1], dtype=np.int32))
        if status == highspy.HighsStatus.kError:
            raise RuntimeError(f"{self.name}: HiGHS refused the LP")
        self.col_index = {key: pos[idx].astype(np.int32) for key, idx in self.columns.items()}
        self.row_index = {key: fam.index.astype(np.int32) for key, fam in self.rows.items()}
        self.extra_index = {key: idx.astype(np.int32) for key, idx in self.extra_rows.items()}
        self._build = {}
        self._lb, self._ub, self._col_cost = col_lb, col_ub, col_cost
        self._rlo, self._rhi = rlo, rhi
        a = a.tocsr()
        x_col = self.col_index["x"]
        is_x = np.zeros(shape[1], dtype=bool)
        is_x[x_col] = True
        self._ax = a[:, x_col].tocsr()  # rows x pools: what `set_coefs` changes
        self._ao = (a @ sp.diags((~is_x).astype(float))).tocsr()  # every other entry
        self._ao.eliminate_zeros()
        self._active = np.arange(shape[0])  # rows in the HiGHS model (full positions)
        self._pos = np.arange(shape[0])  # HiGHS position of each row (-1: left out)
        self._screen_setup()

    # --- screening: only the rows that can bind are in HiGHS ---------------------------
    def _screen_setup(self) -> None:
        """The screenable rows and their reach coefficients (`coordination/reach.py`), from
        the matrix as it stands."""
        self.reach = Reach.build(self._ax, self._ao, self._lb, self._ub, self._col_cost,
                                 [self.row_index[k] for k in SCREENED if k in self.row_index],
                                 self.extra_index.get("hv", np.zeros(0, dtype=np.int32)))
        self._scr = self.reach.rows
        self._hv_rows = self.reach.hv_rows
        ao = self._ao
        self._u_cols = np.array([ao.indices[ao.indptr[r]] if ao.indptr[r + 1] - ao.indptr[r] == 1
                                 else -1 for r in self._hv_rows.tolist()], dtype=np.int64)
        not_u = np.ones(ao.shape[1])
        not_u[self._u_cols[self._u_cols >= 0]] = 0.0
        self._ao_rest = abs(ao) @ sp.diags(not_u)  # |entries| of the columns other than x, u
        self._clear = None  # per screenable row, how far its reach stays from its bounds

    def _screen(self) -> None:
        """Leave out of HiGHS the screenable rows that cannot reach a bound this step, or
        (`near_share`) were far from one at the last solution (the other rows, and the
        left-out rows that are not basic in HiGHS's basis, stay in); the
        rows that must come in are added; the model is passed again only when many can go or
        a refresh changed rows HiGHS holds."""
        outdated, self._outdated = self._outdated, False
        if not self.screen or len(self._scr) == 0:
            if outdated:
                self._rebuild(np.intersect1d(self._active, self._scr))
            return
        lo, hi = self._rlo[self._scr], self._rhi[self._scr]
        amin, amax = self.reach.bounds(self._mw)
        need = reaches(amin, amax, lo, hi)
        if self.near_share is None:  # the left-out rows are the clear ones (`_violated`)
            self._clear = (clearance(amin, amax, lo, hi), amax - amin)
        if self.near_share is not None and self._last_col is not None:
            act = self._activity(self._last_col, self._scr)
            need &= near(act, amin, amax, lo, hi, self.near_share)
        pos = self._pos[self._scr]
        active = pos >= 0
        if active.any():
            basis = self.highs.getBasis()
            if basis.valid:
                status = np.array([int(s) for s in basis.row_status], dtype=np.int64)
                need |= active & (status[np.maximum(pos, 0)] != int(BASIC))
        missing = need & ~active
        many = int((active & ~need).sum()) > SCREEN_SURPLUS * len(self._active)
        if many or (outdated and missing.any()):
            self._rebuild(self._scr[need if many else need | active])
        elif outdated:
            self._rebuild(self._scr[active])
        elif missing.any():
            self._add_rows(self._scr[missing])

    def _add_rows(self, rows: np.ndarray) -> None:
        """Add the rows `rows` to HiGHS's model (after its rows; basic), keeping its basis."""
        a = self._rows_matrix(rows).tocsr()
        self.highs.addRows(len(rows), self._rlo[rows], self._rhi[rows], a.nnz,
                           a.indptr[:-1].astype(np.int32), a.indices.astype(np.int32), a.data)
        self._pos[rows] = len(self._active) + np.arange(len(rows))
        self._active = np.r_[self._active, rows]
        self.n_rebuilds += 1

    def _rebuild(self, screened: np.ndarray) -> None:
        """Pass HiGHS the LP with the unscreenable rows and `screened`, in their full order,
        and the previous basis mapped onto it (rows new in the model: basic)."""
        h = self.highs
        n_row, n_col = self._ao.shape
        fixed_rows = np.ones(n_row, dtype=bool)
        fixed_rows[self._scr] = False
        new = np.flatnonzero(fixed_rows)
        new = np.union1d(new, screened)
        basis = h.getBasis()
        a = self._rows_matrix(new)
        h.passModel(n_col, len(new), a.nnz, int(highspy.MatrixFormat.kColwise), self._sense,
                    self._offset, self._col_cost, self._lb, self._ub,
                    self._rlo[new], self._rhi[new],
                    a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data,
                    np.zeros(n_col, dtype=np.int32))
        old_pos = self._pos
        self._active = new
        self._pos = np.full(n_row, -1)
        self._pos[new] = np.arange(len(new))
        if basis.valid:
            basic = highspy.HighsBasisStatus.kBasic
            row_status = list(basis.row_status)
            basis.row_status = [row_status[old_pos[r]] if old_pos[r] >= 0 else basic
                                for r in new.tolist()]
            h.setBasis(basis)
        self.n_rebuilds += 1

    def _rows_matrix(self, rows: np.ndarray) -> sp.csc_matrix:
        """The whole LP's rows `rows` (x's entries and the others in their model columns),
        column-wise with sorted row indices and without zero entries: the x and the other
        columns are disjoint, so the sum of the two parts only places entries, never adds
        two (scipy's sum of canonical matrices drops zeros; 1.6 times faster than placing
        the entries one by one, the same arrays)."""
        ax, ao = self._ax[rows], self._ao[rows]
        shape = (len(rows), self._ao.shape[1])
        x_part = sp.csr_matrix((ax.data, self.col_index["x"][ax.indices], ax.indptr),
                               shape=shape)
        return x_part.tocsc() + ao.tocsc()

    def _violated(self, col: np.ndarray) -> np.ndarray:
        """Left-out rows the solution `col` does not keep within their screening margin.

        With the box reach alone (``near_share`` None) every left-out row's reach stayed
        clear of its bounds (`_screen`), so a solution inside the box can only bring it
        nearer by what HiGHS leaves of the ``u`` rows (``u_g - c_g x``) and by rounding: the
        rows clear by more than that (`_sure`) are not read, the others are checked as
        before, so the rows found are the same."""
        rows = np.flatnonzero(self._pos < 0)
        if len(rows) == 0:
            return rows
        if self._clear is not None:
            rows = rows[~self._sure(col, rows)]
            if len(rows) == 0:
                return rows
            ax, ao = self._ax[rows], self._ao[rows]  # the same sums as the whole products'
            act = ax @ col[self.col_index["x"]] + ao @ col
        else:
            act = self._activity(col, rows)
        lo, hi = self._rlo[rows], self._rhi[rows]
        return rows[reaches(act, act, lo, hi)]

    def _sure(self, col: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Which of the left-out rows `rows` the solution `col` certainly keeps clear of its
        bounds (`Reach.clear_of`: the margin is ~1000 times the rounding bound for the lengths
        of these rows). None are sure when x leaves the box ``[0, mw]``; a row whose own slack
        or fixed column is not 0 is not sure."""
        x = col[self.col_index["x"]]
        none = np.zeros(len(rows), dtype=bool)
        at = self.reach.at[rows]
        if np.any(x < 0.0) or np.any(x > self._mw) or np.any(at < 0):
            return none
        rest = (self._ao_rest @ np.abs(col))[rows] == 0.0  # own slack and fixed columns at 0
        u = np.where(self._u_cols >= 0, col[np.maximum(self._u_cols, 0)], 0.0)
        return rest & self.reach.clear_of(at, x, u, self._mw, *self._clear)

    def _activity(self, col: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Activity of the rows `rows` at the column values `col`."""
        # whole-matrix products, then the rows: each row's sum is the same, in the same order,
        # and cheaper than gathering most of the rows first. The products at the last
        # solution are kept: the next solve's screening reads them again (`near_share`)
        # unless `set_coefs` changed the matrix in between.
        cached = self._act_cache
        if cached is None or cached[0] is not col or cached[1] != self.n_coef_updates:
            cached = self._act_cache = (col, self.n_coef_updates,
                                        self._x_product(col[self.col_index["x"]]),
                                        self._ao @ col)
        return cached[2][rows] + cached[3][rows]

    def _x_product(self, x: np.ndarray) -> np.ndarray:
        """``_ax @ x``, bit for bit, without reading the matrix when no pool is activated.

        scipy sums each row's terms from +0.0; with every ``x`` at 0 each term is a signed
        zero (the coefficients are finite), and +0.0 plus any signed zeros is +0.0: the
        product is all +0.0. The local markets' D solutions often activate nothing (a whole
        product costs ~2 ms a step in `local`). Reading only the activated pools' columns
        (the same sums per row, in column order) cost as much as it saved in `common` and
        `shared_balancing` (bincount over gathered entries: ~14 against ~1.1 ns an entry)."""
        if not x.any():
            return np.zeros(self._ax.shape[0])
        return self._ax @ x

    def set_offers(self, mw: np.ndarray) -> None:
        """Upper bounds of ``x`` (offered MW) for this step."""
        self._mw = mw
        idx = self.col_index["x"]
        self.highs.changeColsBounds(self.n, idx, np.zeros(self.n), mw)
        self._ub[idx] = mw

    def set_coefs(self, rows: np.ndarray, coefs: sp.csr_matrix) -> None:
        """New coefficients of ``x`` in the rows `rows` (``coefs``: one row per entry of
        `rows`, one column per pool; the rows' other entries are not x's), for this and later
        steps. Only the kept matrix changes; HiGHS gets the rows again (with its basis) at the
        next solve's screening, once, and only if some of them are in its model. Explicit
        zeros in ``coefs`` stay entries of the kept matrix (HiGHS never sees them,
        `_rows_matrix`): rows given again with the same pattern are written in place."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(np.unique(rows)) != len(rows):
            raise ValueError("set_coefs: a row given twice")
        if self._hv_rows.size and np.isin(rows, self._hv_rows).any():
            raise ValueError("set_coefs: the interface-voltage rows are fixed")
        coefs = sp.csr_matrix(coefs)
        self._ax = replace_rows(self._ax, rows, coefs)
        self.reach.update(self._ax, rows)
        if np.any(self._pos[rows] >= 0):
            self._outdated = True  # HiGHS gets the rows again before the next solve
        self.n_coef_updates += 1

    def set_rows(self, key: str, lo: np.ndarray | None, hi: np.ndarray | None) -> None:
        """Bounds of one row family for this step (``None``: that side is infinite)."""
        fam = self.rows[key]
        if fam.n == 0:
            return
        lo = np.full(fam.n, -np.inf) if lo is None else np.asarray(lo, dtype=float)
        hi = np.full(fam.n, np.inf) if hi is None else np.asarray(hi, dtype=float)
        rows = self.row_index[key]
        self._rlo[rows], self._rhi[rows] = lo, hi
        pos = self._pos[rows]
        on = pos >= 0
        if on.any():
            self.highs.changeRowsBounds(int(on.sum()), pos[on].astype(np.int32), lo[on], hi[on])

    def solve(self, cost: np.ndarray) -> Solution:
        """Solve with objective coefficients ``cost`` on ``x``, warm-started from the last
        basis, on the rows that can bind (`_screen`); left-out rows the solution violates are
        added and the LP solved again. A result that fails :meth:`checked` is solved again
        from scratch on the same HiGHS model (solver data cleared, presolve on)."""
        idx = self.col_index["x"]
        self._col_cost[idx] = cost
        self.highs.changeColsCost(self.n, idx, cost)
        self._screen()
        while True:
            sol = self.checked(self._run())
            if sol is None:
                self.n_cold_restarts += 1
                self.highs.clearSolver()  # no basis: presolve on
                status = self._run()
                sol = self.checked(status)
                if sol is None:
                    raise RuntimeError(f"{self.name} LP not solved: {status}")
            bad = self._violated(sol.col)
            if len(bad) == 0:
                self._last_col = sol.col
                return sol
            self.n_screen_misses += len(bad)
            self._add_rows(bad)

    def _run(self) -> highspy.HighsModelStatus:
        """One HiGHS run on the model as it stands."""
        self.highs.run()
        self.n_solves += 1
        return self.highs.getModelStatus()

    def checked(self, status: highspy.HighsModelStatus) -> Solution | None:
        """The solution if ``status`` is optimal and its reduced costs have the right signs
        (>= 0 at a lower bound, <= 0 at an upper bound, 0 in between), else None."""
        if status != highspy.HighsModelStatus.kOptimal:
            return None
        # the vectors read, not getSolution (it copies all four, each read turns into a list)
        h = self.highs
        val = np.asarray(h.allVariableValues(), dtype=float)
        rc = np.asarray(h.allVariableDuals(), dtype=float)
        tol_x = 1e-7 * (1.0 + np.abs(val))
        at_lb = val <= self._lb + tol_x
        at_ub = val >= self._ub - tol_x
        bad = (at_lb & ~at_ub & (rc < -RC_TOL)) | (at_ub & ~at_lb & (rc > RC_TOL)) \
            | (~at_lb & ~at_ub & (np.abs(rc) > RC_TOL))
        if bad.any():
            return None
        dual = np.zeros(len(self._pos))
        dual[self._active] = np.asarray(h.allConstrDuals(), dtype=float)  # left out: 0
        return Solution(val, rc, dual)

    def clear_prices(self, price: np.ndarray, ties: str = "always",
                     exact_prices: bool = False) -> tuple[Solution, Solution]:
        """Solve at ``price`` with ties broken (see the module docstring): the solution to
        read activations from, and the one to read prices (duals, reduced costs) from."""
        if ties not in ("always", "offered"):
            raise ValueError(f"unknown tie policy '{ties}'")
        if ties == "always" or (ties == "offered" and has_ties(price, self._mw)):
            sol = self.solve(price + TIE_EPS * tie_rank(price))
            if exact_prices and ties == "offered":
                return sol, self.solve(price)  # same basis, true prices: exact duals
            return sol, sol
        sol = self.solve(price)
        return sol, sol

    def row_positions(self, key: str) -> np.ndarray:
        """HiGHS row positions of a row family (or of the constant rows `extra_rows`)."""
        if key in self.row_index:
            return self.row_index[key]
        return self.extra_index.get(key, np.zeros(0, dtype=np.int32))

    def value_part(self, sol: Solution, rows: np.ndarray) -> np.ndarray:
        """What the rows `rows` (HiGHS positions) add to each pool's locational value:
        sum_r A[r, p] * dual_r. Over all rows this is the pool's price minus its reduced cost
        (LP duality), so the parts of the row families split that value by cause."""
        rows = np.asarray(rows)
        rows = rows[sol.row_dual[rows] != 0.0]  # the other rows add exact zeros
        if len(rows) == 0:
            return np.zeros(self.n)
        # the rows' entries read in place: ``_ax[rows].T @ dual`` (scipy: per pool, from 0.0,
        # the terms row after row in `rows`' order, each row's in stored order), the same
        # terms added in the same order by ``np.bincount``, without cutting out the rows
        ax = self._ax
        at = row_entries(ax, rows)
        terms = ax.data[at] * np.repeat(sol.row_dual[rows], ax.indptr[rows + 1] - ax.indptr[rows])
        return np.bincount(ax.indices[at], weights=terms, minlength=self.n)

    def values(self, sol: Solution, key: str) -> np.ndarray:
        return sol.col[self.col_index[key]]

    def reduced_costs(self, sol: Solution, key: str) -> np.ndarray:
        return sol.rc[self.col_index[key]]

    def duals(self, sol: Solution, key: str) -> np.ndarray:
        return sol.row_dual[self.row_index[key]] if key in self.row_index else np.zeros(0)


def _cat(parts: list[np.ndarray], dtype: type = float) -> np.ndarray:
    """The arrays `parts` end to end (an empty array of `dtype` if there are none)."""
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def tie_rank(price: np.ndarray) -> np.ndarray:
    """Rank of each pool in (price, index) order."""
    n = len(price)
    order = np.lexsort((np.arange(n), price))
    rank = np.empty(n)
    rank[order] = np.arange(n)
    return rank


def has_ties(price: np.ndarray, mw: np.ndarray) -> bool:
    """Whether offered pools share a price (to 1e-6 EUR/MWh)."""
    offered = np.round(price[mw > 0.0], 6)
    return len(np.unique(offered)) < len(offered)
