"""AC power flow of one grid on pandapower's own admittance matrices, built once per run.

`pandapower.runpp` spends most of its 20-100 ms per call in Python bookkeeping; the Newton-Raphson
itself on a cached Ybus takes about a millisecond. `GridModel` runs `runpp` once to let pandapower
build the internal case (bus fusion by switches, transformer models, shunts, line charging), keeps
its Ybus/Yf/Yt and the element-to-bus incidence, and then solves each step with a Newton-Raphson
whose Jacobian (pandapower's `dSbus_dV` formulas) is filled into a sparsity pattern fixed once.
The LU factors of a Jacobian are kept across iterations and solves while they still converge
fast (a chord step), and the mismatch, the voltage update and the triangular solves run as
numba-compiled loops (numpy's per-call overhead and SuperLU's supernode walk dominated on
these small, very sparse systems); the iterations between two factorisations are one compiled
call (`_passes`), and so are the element injections (`_element_kernel`).
Results (bus voltages, branch loadings, branch flows) follow pandapower's definitions;
`tests/test_powerflow.py` checks them against `runpp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp
import scipy.sparse as sp
from numba import njit
from pandapower.auxiliary import pandapowerNet
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

SQRT3 = np.sqrt(3.0)
CHORD_ITERATIONS = 6  # iterations with earlier factors allowed beyond max_iter factorisations
CHORD_RATE = 0.5  # a step with earlier factors must cut the mismatch at least by this factor


@njit(cache=True)
def _lu_solve(perm_r, perm_c, lp, li, lx, up, ui, ux, udiag, b):  # pragma: no cover
    """x with A x = b from SuperLU's factors Pr A Pc = L U (L unit lower, U upper; CSC)."""
    n = len(b)
    y = np.empty(n)
    for i in range(n):
        y[perm_r[i]] = b[i]
    for j in range(n):  # L z = y, column by column
        yj = y[j]
        if yj != 0.0:
            for k in range(lp[j], lp[j + 1]):
                i = li[k]
                if i > j:
                    y[i] -= lx[k] * yj
    for j in range(n - 1, -1, -1):  # U w = z
        yj = y[j] / udiag[j]
        y[j] = yj
        if yj != 0.0:
            for k in range(up[j], up[j + 1]):
                i = ui[k]
                if i < j:
                    y[i] -= ux[k] * yj
    x = np.empty(n)
    for i in range(n):
        x[i] = y[perm_c[i]]
    return x


@njit(cache=True)
def _mismatch_kernel(yp, yi, yx, v, sbus, pvpq, pq, f, i_bus):  # pragma: no cover
    """I = Ybus V into `i_bus`, the P (pv and pq) and Q (pq) mismatches into `f`; returns
    the largest absolute mismatch (inf if any is not finite)."""
    for r in range(len(v)):
        acc = 0j
        for k in range(yp[r], yp[r + 1]):
            acc += yx[k] * v[yi[k]]
        i_bus[r] = acc
    npv = len(pvpq)
    err = 0.0
    finite = True
    for a in range(npv):
        b = pvpq[a]
        x = (v[b] * np.conj(i_bus[b]) - sbus[b]).real
        f[a] = x
        finite = finite and np.isfinite(x)
        err = max(err, abs(x))
    for a in range(len(pq)):
        b = pq[a]
        x = (v[b] * np.conj(i_bus[b]) - sbus[b]).imag
        f[npv + a] = x
        finite = finite and np.isfinite(x)
        err = max(err, abs(x))
    return err if finite else np.inf


@njit(cache=True)
def _update_kernel(v, dx, pvpq, pq):  # pragma: no cover
    """V after the Newton step dx (angles of pv and pq buses, magnitudes of pq buses); the
    other buses (slacks) exactly as they were."""
    out = v.copy()
    ang = np.empty(len(v))
    mag = np.empty(len(v))
    for a in range(len(pvpq)):
        b = pvpq[a]
        ang[b] = np.angle(v[b]) - dx[a]
        mag[b] = np.abs(v[b])
    npv = len(pvpq)
    for a in range(len(pq)):
        mag[pq[a]] -= dx[npv + a]
    for a in range(len(pvpq)):
        b = pvpq[a]
        out[b] = mag[b] * (np.cos(ang[b]) + 1j * np.sin(ang[b]))
    return out


@njit(cache=True)
def _passes(perm_r, perm_c, lp, li, lx, up, ui, ux, udiag, yp, yi, yx, sbus, pvpq, pq,
            v, f, i_bus, err, fresh, tol, rate, passes):  # pragma: no cover
    """Newton passes with the factors at hand (`GridModel._newton`'s loop between two
    factorisations), the same kernels in the same order as one Python call each: the first
    pass is a full Newton step if the factors are `fresh`, every later one a chord step, kept
    only if it cuts the mismatch by `rate`. Returns (outcome, v, f, i_bus, err, passes
    used, iterations): 0 converged, 1 a chord step was discarded (refactorise at v), 2 a
    non-finite step, 3 `passes` used up."""
    n = len(f)
    f_try = np.empty(n)
    i_try = np.empty(len(v), dtype=np.complex128)
    used = 0
    it = 0
    while used < passes:
        used += 1
        dx = _lu_solve(perm_r, perm_c, lp, li, lx, up, ui, ux, udiag, f)
        for a in range(len(dx)):
            if not np.isfinite(dx[a]):
                return 2, v, f, i_bus, err, used, it
        v_try = _update_kernel(v, dx, pvpq, pq)
        it += 1
        err_try = _mismatch_kernel(yp, yi, yx, v_try, sbus, pvpq, pq, f_try, i_try)
        if not fresh and not (err_try <= rate * err):
            return 1, v, f, i_bus, err, used, it
        v, err = v_try, err_try
        f, f_try = f_try, f
        i_bus, i_try = i_try, i_bus
        if err < tol:
            return 0, v, f, i_bus, err, used, it
        fresh = False
    return 3, v, f, i_bus, err, used, it


@njit(cache=True)
def _element_kernel(lp, li, lx, p_load, q_load, sp_, si, sx, p_sgen, q_sgen, tp, ti, tx,
                    p_sto, q_sto, base_mva, out):  # pragma: no cover
    """`GridModel._element_s` in one pass, the operations of its numpy form in their order
    (scipy's complex product per bus, the complex division of numpy's loop)."""
    scl = 1.0 / (base_mva + 0.0 * (0.0 / base_mva))
    for r in range(len(out)):
        a = 0j
        for k in range(lp[r], lp[r + 1]):
            j = li[k]
            a += complex(lx[k], 0.0) * (p_load[j] + 1j * q_load[j])
        s = -a
        b = 0j
        for k in range(sp_[r], sp_[r + 1]):
            j = si[k]
            b += complex(sx[k], 0.0) * (p_sgen[j] + 1j * q_sgen[j])
        s = s + b
        c = 0j
        for k in range(tp[r], tp[r + 1]):
            j = ti[k]
            c += complex(tx[k], 0.0) * (p_sto[j] + 1j * q_sto[j])
        s = s - c
        rat = 0.0 / base_mva
        out[r] = complex((s.real + s.imag * rat) * scl, (s.imag - s.real * rat) * scl)


@njit(cache=True)
def _branch_kernel(fp, fi, fx, tp, ti, tx, f_int, t_int, v, kv, limit_ka, base_mva,
                   loading, p_from, q_from):  # pragma: no cover
    """Branch flows at both ends and pandapower's current loading (percent) of each branch:
    S = V conj(Y_branch V), I = |S| / (|V| kV sqrt3), loading = the larger end's I / limit."""
    sqrt3 = np.sqrt(3.0)
    for r in range(len(f_int)):
        a = 0j
        for k in range(fp[r], fp[r + 1]):
            a += fx[k] * v[fi[k]]
        b = 0j
        for k in range(tp[r], tp[r + 1]):
            b += tx[k] * v[ti[k]]
        vf, vt = v[f_int[r]], v[t_int[r]]
        s_f = vf * np.conj(a) * base_mva
        s_t = vt * np.conj(b) * base_mva
        i_f = np.abs(s_f) / (np.abs(vf) * kv[r, 0]) / sqrt3 / limit_ka[r, 0]
        i_t = np.abs(s_t) / (np.abs(vt) * kv[r, 1]) / sqrt3 / limit_ka[r, 1]
        if np.isnan(i_f) or np.isnan(i_t):
            loading[r] = np.nan
        else:
            loading[r] = max(i_f, i_t) * 100.0
        p_from[r] = s_f.real
        q_from[r] = s_f.imag


class Factors:
    """LU factors of one Jacobian (SuperLU's, with its fill-reducing ordering), as the arrays
    of the compiled substitution `_lu_solve` (`_passes` applies them): SuperLU's own `solve`
    walks its supernodes one by one, which for these very sparse factors costs several times
    the arithmetic."""

    def __init__(self, jac: sp.csc_matrix):
        lu = splu(jac)
        lower, upper = lu.L.tocsc(), lu.U.tocsc()
        self._args = (lu.perm_r.astype(np.int64), lu.perm_c.astype(np.int64),
                      lower.indptr.astype(np.int64), lower.indices.astype(np.int64),
                      lower.data, upper.indptr.astype(np.int64),
                      upper.indices.astype(np.int64), upper.data, upper.diagonal())

    @property
    def args(self) -> tuple:
        """The factors as `_lu_solve`'s arrays."""
        return self._args


class PowerFlowNotConverged(RuntimeError):
    """The Newton-Raphson did not reach the tolerance within its iteration limit."""


@dataclass
class FlowResult:
    """One solved power flow, in pandapower's element order."""

    vm_pu: np.ndarray  # (buses,) NaN for isolated buses
    va_degree: np.ndarray  # (buses,)
    loading_percent: np.ndarray  # (lines + trafos,)
    p_from_mw: np.ndarray  # (lines + trafos,) active power entering at the from/hv side
    q_from_mvar: np.ndarray  # (lines + trafos,)
    slack_s_mva: np.ndarray  # (ref buses,) complex power injected by each slack bus
    iterations: int

    def copy(self) -> FlowResult:
        """An independent copy (callers may change the arrays of the one they hold)."""
        return FlowResult(self.vm_pu.copy(), self.va_degree.copy(), self.loading_percent.copy(),
                          self.p_from_mw.copy(), self.q_from_mvar.copy(),
                          self.slack_s_mva.copy(), self.iterations)


class GridModel:
    """A pandapower net prepared for fast repeated AC power flows.

    Injections are given per element table (load, sgen, storage) as MW/Mvar arrays in the
    order of the net's element tables, with pandapower's sign conventions (loads and charging
    storage consume). Slack voltages can be changed per solve (the D grids' interface).
    """

    def __init__(self, net: pandapowerNet, tol_mva: float = 1e-6, max_iter: int = 20):
        self.net = net
        self.tol = tol_mva
        self.max_iter = max_iter
        pp.runpp(net, numba=False)
        internal = net._ppc["internal"]
        self.base_mva = float(internal["baseMVA"])
        self.ybus = sp.csr_matrix(internal["Ybus"])
        self.yf = sp.csr_matrix(internal["Yf"])
        self.yt = sp.csr_matrix(internal["Yt"])
        self.ref = np.asarray(internal["ref"], dtype=np.int64)
        self.pv = np.asarray(internal["pv"], dtype=np.int64)
        self.pq = np.asarray(internal["pq"], dtype=np.int64)
        if len(self.pv):
            raise ValueError("voltage-controlled generators (PV buses) are not supported")
        self.n_bus_int = self.ybus.shape[0]
        self.pvpq = np.r_[self.pv, self.pq]
        # pandapower bus -> internal bus (isolated buses map outside the internal range)
        lookup = net._pd2ppc_lookups["bus"]
        self.bus_index = net.bus.index.to_numpy()
        self.bus_int = np.asarray(lookup[self.bus_index], dtype=np.int64)
        self.bus_ok = (self.bus_int >= 0) & (self.bus_int < self.n_bus_int)
        self._inc = {t: self._incidence(t) for t in ("load", "sgen", "storage")}
        self._inc_arrays = {t: (m.indptr.astype(np.int64), m.indices.astype(np.int64),
                                m.data.astype(float)) for t, m in self._inc.items()}
        # constant part of Sbus that is not one of the three element tables (e.g. wards)
        self.v = np.asarray(internal["V"], dtype=complex).copy()
        self.s_const = np.zeros(self.n_bus_int, dtype=complex)
        s_elem = self._element_s(*self.base_injections())
        self.s_const = np.asarray(internal["Sbus"], dtype=complex) - s_elem
        self.s_const[self.ref] = 0.0
        self._branches(net)
        self.v_ref = self.v[self.ref].copy()
        self._jacobian_pattern()
        self._ybus_ref = self.ybus[self.ref]
        self._feeder = self._feeders()
        self._lu = None
        self.skipped = 0  # solves answered from the last result (same inputs)
        self._last: tuple[np.ndarray, np.ndarray, FlowResult] | None = None

    # --- set-up -----------------------------------------------------------------------
    def _incidence(self, table: str) -> sp.csr_matrix:
        df = self.net[table]
        n = len(df)
        if n == 0:
            return sp.csr_matrix((self.n_bus_int, 0))
        rows = np.asarray(self.net._pd2ppc_lookups["bus"][df.bus.to_numpy()], dtype=np.int64)
        scale = (df.scaling.to_numpy() * df.in_service.to_numpy()).astype(float)
        ok = (rows >= 0) & (rows < self.n_bus_int)
        return sp.csr_matrix((scale[ok], (rows[ok], np.arange(n)[ok])), shape=(self.n_bus_int, n))

    def _feeders(self) -> np.ndarray:
        """Per internal bus, the position in `ref` of a slack of its island (the first)."""
        y = self.ybus
        links = sp.csr_matrix((np.ones(len(y.data)), y.indices, y.indptr), shape=y.shape)
        _, island = connected_components(links, directed=False)
        first = np.full(island.max(initial=-1) + 1, 0, dtype=np.int64)
        first[island[self.ref[::-1]]] = np.arange(len(self.ref))[::-1]
        return first[island]

    def _jacobian_pattern(self) -> None:
        """Fix the Jacobian's sparsity once; each iteration then only fills in values.

        The entries follow pandapower's `dSbus_dV` (dS/dVa = j V conj(I - Y V), dS/dVm =
        V conj(Y V/|V|) + conj(I) V/|V|), evaluated on Ybus's pattern plus its diagonal.
        """
        n = self.n_bus_int
        pattern = (abs(self.ybus) + sp.identity(n, format="csr")).tocoo()
        r, c = pattern.row.astype(np.int64), pattern.col.astype(np.int64)
        self._yr, self._yc = r, c
        self._yv = np.asarray(self.ybus[r, c]).ravel()
        self._ydiag = np.flatnonzero(r == c)[np.argsort(r[r == c])]
        pvpq, pq = self.pvpq, self.pq
        row_p = np.full(n, -1)
        row_p[pvpq] = np.arange(len(pvpq))
        row_q = np.full(n, -1)
        row_q[pq] = len(pvpq) + np.arange(len(pq))
        col_a, col_m = row_p, row_q
        blocks = [(row_p, col_a), (row_p, col_m), (row_q, col_a), (row_q, col_m)]
        self._jsel = [np.flatnonzero((rr[r] >= 0) & (cc[c] >= 0)) for rr, cc in blocks]
        jr = np.concatenate([rr[r[e]] for (rr, _), e in zip(blocks, self._jsel, strict=True)])
        jc = np.concatenate([cc[c[e]] for (_, cc), e in zip(blocks, self._jsel, strict=True)])
        size = len(pvpq) + len(pq)
        order = sp.csc_matrix((np.arange(1, len(jr) + 1, dtype=float), (jr, jc)),
                              shape=(size, size))
        self._jperm = order.data.astype(np.int64) - 1
        self._jindices, self._jindptr, self._jsize = order.indices, order.indptr, size

    def _jacobian(self, v: np.ndarray, i_bus: np.ndarray) -> sp.csc_matrix:
        vr, vc = v[self._yr], v[self._yc]
        yvc = self._yv * vc
        dva = -1j * vr * np.conj(yvc)
        dvm = vr * np.conj(yvc / np.abs(vc))
        d = self._ydiag
        dva[d] += 1j * v * np.conj(i_bus)
        dvm[d] += np.conj(i_bus) * v / np.abs(v)
        e11, e12, e21, e22 = self._jsel
        data = np.concatenate([dva.real[e11], dvm.real[e12], dva.imag[e21], dvm.imag[e22]])
        return sp.csc_matrix((data[self._jperm], self._jindices, self._jindptr),
                             shape=(self._jsize, self._jsize))

    def _branches(self, net: pandapowerNet) -> None:
        lookups = net._pd2ppc_lookups["branch"]
        internal = net._ppc["internal"]
        branch = internal["branch"]
        f_bus = branch[:, 0].real.astype(np.int64)
        t_bus = branch[:, 1].real.astype(np.int64)
        base_kv = internal["bus"][:, 9].real
        rows, limit_kw, kind = [], [], []
        if "line" in lookups:
            f, t = lookups["line"]
            rows.append(np.arange(f, t))
            line = net.line
            imax = (line.max_i_ka * line.df * line.parallel).to_numpy()
            limit_kw.append(np.c_[imax, imax])
            kind.append(np.zeros(t - f))
        if "trafo" in lookups:
            f, t = lookups["trafo"]
            rows.append(np.arange(f, t))
            tr = net.trafo
            # pandapower's 'current' loading: i * vn * sqrt3 / sn_mva / parallel / df
            scale = (tr.sn_mva * tr.parallel * tr.df).to_numpy() / SQRT3
            limit_kw.append(np.c_[scale / tr.vn_hv_kv.to_numpy(), scale / tr.vn_lv_kv.to_numpy()])
            kind.append(np.ones(t - f))
        self.branch_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        self.branch_limit_ka = np.vstack(limit_kw) if limit_kw else np.zeros((0, 2))
        self.branch_limit_ka = np.ascontiguousarray(self.branch_limit_ka, dtype=float)
        self.branch_kv = np.ascontiguousarray(
            np.c_[base_kv[f_bus], base_kv[t_bus]][self.branch_rows], dtype=float)
        self.branch_is_trafo = np.concatenate(kind).astype(bool) if kind else np.zeros(0, bool)
        # rated apparent power per branch (MVA), the base of the loading percentages
        self.rating_mva = SQRT3 * self.branch_limit_ka[:, 0] * np.where(
            self.branch_is_trafo, 0.0, self.branch_kv[:, 0])
        if len(self.branch_rows) and "trafo" in lookups:
            tr = net.trafo
            self.rating_mva[self.branch_is_trafo] = (tr.sn_mva * tr.parallel * tr.df).to_numpy()
        self.yf_b = self.yf[self.branch_rows]
        self.yt_b = self.yt[self.branch_rows]
        self.f_int = f_bus[self.branch_rows]
        self.t_int = t_bus[self.branch_rows]

    def base_injections(self) -> tuple[np.ndarray, ...]:
        """The net's own element set-points: (p_load, q_load, p_sgen, q_sgen, p_sto, q_sto)."""
        n = self.net
        return (n.load.p_mw.to_numpy(float), n.load.q_mvar.to_numpy(float),
                n.sgen.p_mw.to_numpy(float), n.sgen.q_mvar.to_numpy(float),
                n.storage.p_mw.to_numpy(float), n.storage.q_mvar.to_numpy(float))

    def _element_s(self, p_load, q_load, p_sgen, q_sgen, p_sto, q_sto) -> np.ndarray:
        """Complex injection per internal bus (pu) of the element tables: -(loads) + sgens -
        storage, divided by the base (one compiled pass, `_element_kernel`)."""
        out = np.empty(self.n_bus_int, dtype=complex)
        a = [np.ascontiguousarray(x, dtype=float)
             for x in (p_load, q_load, p_sgen, q_sgen, p_sto, q_sto)]
        _element_kernel(*self._inc_arrays["load"], a[0], a[1], *self._inc_arrays["sgen"],
                        a[2], a[3], *self._inc_arrays["storage"], a[4], a[5],
                        float(self.base_mva), out)
        return out

    # --- solving ----------------------------------------------------------------------
    def solve(self, p_load, q_load, p_sgen, q_sgen, p_sto, q_sto,
              v_ref: np.ndarray | None = None) -> FlowResult:
        """Solve the AC power flow; `v_ref` sets the complex slack voltages (pu) if given.

        A solve with the same injections and slack voltages as the last one returns a copy of
        the last result without iterating: Newton would start from the last solution, find its
        mismatch below the tolerance and return it unchanged (the same figures to the bit).
        """
        sbus = self._element_s(p_load, q_load, p_sgen, q_sgen, p_sto, q_sto) + self.s_const
        if v_ref is not None:
            self.v_ref = np.asarray(v_ref, dtype=complex)
        last = self._last
        if (last is not None and np.array_equal(last[0], sbus)
                and np.array_equal(last[1], self.v_ref)):
            self.skipped += 1
            res = last[2].copy()
            res.iterations = 0
            return res
        self._last = None
        # start from the last solution, each island scaled by its slack's change (a tap move
        # or a new interface voltage shifts the whole island nearly in proportion)
        v = self.v.copy()
        old = v[self.ref]
        ratio = np.divide(self.v_ref, old, out=np.ones_like(old), where=np.abs(old) > 0)
        v *= ratio[self._feeder]
        v[self.ref] = self.v_ref
        if not np.all(np.isfinite(v)) or np.any(np.abs(v) < 0.5):
            v = np.ones_like(v)
            v[self.ref] = self.v_ref
        v, it = self._newton(v, sbus)
        self.v = v
        res = self._result(v, it)
        self._last = (sbus, self.v_ref.copy(), res.copy())
        return res

    def _mismatch(self, v: np.ndarray, sbus: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(mismatch vector, bus currents, largest absolute mismatch or inf if not finite)."""
        f = np.empty(len(self.pvpq) + len(self.pq))
        i_bus = np.empty(len(v), dtype=complex)
        y = self.ybus
        err = _mismatch_kernel(y.indptr, y.indices, y.data, v, sbus, self.pvpq, self.pq, f,
                               i_bus)
        return f, i_bus, err

    def _newton(self, v: np.ndarray, sbus: np.ndarray) -> tuple[np.ndarray, int]:
        """Newton-Raphson that refactorises the Jacobian only when the factors at hand stop
        converging fast enough.

        Between steps, and between the iterations of one solve, the operating point moves
        little, so the factors of an earlier Jacobian (of this solve or of an earlier one)
        usually still cut the mismatch by far more than half per iteration at the cost of two
        triangular solves (a chord step). A chord step that does not (`CHORD_RATE`) is
        discarded and the Jacobian refactorised at the current point; a step with fresh factors
        is a plain Newton step and always taken. LU factorisations are most of a solve's cost.
        """
        tol = self.tol / self.base_mva
        f, i_bus, err = self._mismatch(v, sbus)
        if err < tol:
            return v, 0
        y = self.ybus
        it = factorisations = 0
        left = self.max_iter + CHORD_ITERATIONS  # passes, discarded chord steps included
        while left > 0:
            fresh = self._lu is None
            if fresh:
                if factorisations == self.max_iter:
                    break
                self._lu = Factors(self._jacobian(v, i_bus))
                factorisations += 1
            outcome, v, f, i_bus, err, used, done = _passes(
                *self._lu.args, y.indptr, y.indices, y.data, sbus, self.pvpq, self.pq,
                v, f, i_bus, err, fresh, tol, CHORD_RATE, left)
            left -= used
            it += done
            if outcome == 0:
                return v, it
            if outcome == 1:
                self._lu = None  # refactorise at v and take a Newton step from there
            elif outcome == 2:
                break
        self._lu = None
        raise PowerFlowNotConverged(
            f"AC power flow did not converge in {self.max_iter} iterations "
            f"(largest mismatch {err * self.base_mva:.3g} MVA)")

    def _result(self, v: np.ndarray, it: int) -> FlowResult:
        vm = np.full(len(self.bus_index), np.nan)
        va = np.full(len(self.bus_index), np.nan)
        vm[self.bus_ok] = np.abs(v[self.bus_int[self.bus_ok]])
        va[self.bus_ok] = np.degrees(np.angle(v[self.bus_int[self.bus_ok]]))
        n = len(self.f_int)
        loading, p_from, q_from = np.empty(n), np.empty(n), np.empty(n)
        yf, yt = self.yf_b, self.yt_b
        _branch_kernel(yf.indptr, yf.indices, yf.data, yt.indptr, yt.indices, yt.data,
                       self.f_int, self.t_int, v, self.branch_kv, self.branch_limit_ka,
                       self.base_mva, loading, p_from, q_from)
        s_ref = v[self.ref] * np.conj(self._ybus_ref @ v) * self.base_mva
        return FlowResult(vm_pu=vm, va_degree=va, loading_percent=loading,
                          p_from_mw=p_from, q_from_mvar=q_from, slack_s_mva=s_ref,
                          iterations=it)

    def bus_voltage(self, buses: np.ndarray) -> np.ndarray:
        """Complex voltage (pu) of pandapower buses from the last solve."""
        return self.v[np.asarray(self.net._pd2ppc_lookups["bus"][buses], dtype=np.int64)]

    @property
    def branch_names(self) -> list[str]:
        return [str(n) for n in self.net.line.name] + [str(n) for n in self.net.trafo.name]
