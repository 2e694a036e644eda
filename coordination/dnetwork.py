"""Linear model of the distribution grids for the markets: voltage and loading sensitivities.

HiGHS cannot solve the SOCP relaxation SmartNet used for the D grids, so the markets see them
through a linearised AC model: around a solved operating point of the D net, how much each
bus voltage magnitude and each branch loading changes per MW injected at a resource's bus.
The coefficients come from the Newton-Raphson Jacobian of `simulators.powerflow.GridModel`
(the same equations the grid truth is solved with): per island one sparse LU factorisation and
one multi-column solve for its injection buses, then the branch currents through Yf/Yt. They
depend on the operating point (a loading's slope changes sign when its flow reverses), so the
markets refresh them as the D grids' reported state moves (`coordination.dgrids.DGridView.
refresh`, at the voltages `internal_voltage` rebuilds from the grids' reports); all D grids
at once take about 0.1 s for the default D net (`benchmarks/linear_model_error.py`).

An injection is +1 MW of active power at constant reactive power (an up activation of a
resource whose reactive set-point stays where it was). Slack buses (the interface HV buses)
hold their voltage, so they and injections at them have zero sensitivity. Every D grid is an
island of one net; the Jacobian is block diagonal, so an injection only moves its own grid.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu, spsolve
from threadpoolctl import ThreadpoolController
from tsodso.core.powerflow import SQRT3, FlowResult, GridModel

#: The BLAS libraries (numpy's, scipy's) whose threads `sensitivities` holds to one: SuperLU's
#: multi-column solves of the islands (200-300 rows, about 100 columns) took 0.8 ms (median)
#: on one thread and 13 ms (median; up to 164 ms) on OpenBLAS's two threads of a loaded 2-core
#: machine (six islands of the default D net, OPENBLAS_NUM_THREADS=1 and unset). The command
#: line already runs single-threaded (tsodso.cli); runs from the Python API now solve alike.
BLAS = ThreadpoolController()


@dataclass
class DSensitivity:
    """Linearised AC model of the D grids around one operating point."""

    bus: np.ndarray  # monitored bus positions (pandapower bus order of the level net)
    branch: np.ndarray  # monitored branch positions (level net's result order: lines, trafos)
    dv_dp: np.ndarray  # (n_bus_monitored, n_inj) pu voltage magnitude change per MW injected
    dl_dp: np.ndarray  # (n_branch_monitored, n_inj) loading-percent change per MW injected
    inj_bus: np.ndarray  # pandapower bus index of each injection column

    def predict(self, vm_pu: np.ndarray, loading_percent: np.ndarray,
                dp_mw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Monitored voltages and loadings after injecting `dp_mw` (per column) at the
        operating point whose monitored `vm_pu` / `loading_percent` are given."""
        dp = np.asarray(dp_mw, dtype=float)
        return vm_pu + self.dv_dp @ dp, loading_percent + self.dl_dp @ dp


def sensitivities(model: GridModel, result: FlowResult | None, inj_bus: np.ndarray,
                  bus_pos: np.ndarray | None = None,
                  branch_pos: np.ndarray | None = None,
                  v: np.ndarray | None = None) -> DSensitivity:
    """Sensitivities of |V| and loading to +1 MW at each of `inj_bus` (pandapower indices).

    The operating point is `v` (complex voltage of each of the model's internal buses, see
    `internal_voltage`) if given; otherwise `model` must hold the operating point of `result`
    (call right after `model.solve`). Only `model`'s admittances and Jacobian pattern are read
    with `v` given, so a market can linearise at a reported state without touching the solver.
    `bus_pos` / `branch_pos` choose the monitored rows (default: all buses, all branches).
    Isolated buses and injections at buses outside the solved net get zero rows/columns.
    Each island (connected component) is factorised and solved on its own: the work grows
    with the islands' sizes, not with the whole net times all injections. BLAS runs on one
    thread meanwhile (`BLAS`).
    """
    with BLAS.limit(limits=1, user_api="blas"):
        return _sensitivities(model, result, inj_bus, bus_pos, branch_pos, v)


def sensitivity_blocks(model: GridModel, inj_bus: np.ndarray, bus_pos: np.ndarray,
                       branch_pos: np.ndarray, v: np.ndarray
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                       np.ndarray]]:
    """`sensitivities` at the operating point `v`, island by island: per island with an
    injection, its monitored rows (positions in `bus_pos`), its columns (positions in
    `inj_bus`), their voltage block, its monitored branches (positions in `branch_pos`) and
    their loading block. Every other entry of `sensitivities`'s matrices is 0 (an injection
    only moves its own island), so a caller that keeps those zeros writes only the blocks:
    the refresh of a few D grids then touches their blocks, not (buses x columns) of them
    all."""
    with BLAS.limit(limits=1, user_api="blas"):
        return list(_island_blocks(model, None, np.asarray(inj_bus, dtype=np.int64),
                                   np.asarray(bus_pos, int), np.asarray(branch_pos, int),
                                   np.asarray(v, dtype=complex)))


def _sensitivities(model: GridModel, result: FlowResult | None, inj_bus: np.ndarray,
                   bus_pos: np.ndarray | None, branch_pos: np.ndarray | None,
                   v: np.ndarray | None) -> DSensitivity:
    """`sensitivities` (BLAS threads already held to one): the islands' blocks
    (`_island_blocks`) in zero matrices."""
    inj_bus = np.asarray(inj_bus, dtype=np.int64)
    bus_pos = np.arange(len(model.bus_index)) if bus_pos is None else np.asarray(bus_pos, int)
    n_branch = len(model.branch_rows)
    branch_pos = np.arange(n_branch) if branch_pos is None else np.asarray(branch_pos, int)
    dv_dp = np.zeros((len(bus_pos), len(inj_bus)))
    dl_dp = np.zeros((len(branch_pos), len(inj_bus)))
    for rows, cols, dv, br, dl in _island_blocks(model, result, inj_bus, bus_pos, branch_pos,
                                                 v):
        dv_dp[np.ix_(rows, cols)] = dv
        if len(br):
            dl_dp[np.ix_(br, cols)] = dl
    return DSensitivity(bus=bus_pos, branch=branch_pos, dv_dp=dv_dp, dl_dp=dl_dp,
                        inj_bus=inj_bus)


def _island_blocks(model: GridModel, result: FlowResult | None, inj_bus: np.ndarray,
                   bus_pos: np.ndarray, branch_pos: np.ndarray, v: np.ndarray | None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                       np.ndarray]]:
    """The blocks of `sensitivity_blocks` (`v` None: the model's operating point, checked
    against `result`)."""
    check = v is None
    v = model.v if v is None else np.asarray(v, dtype=complex)
    ok = model.bus_ok
    if check and not np.allclose(np.abs(v[model.bus_int[ok]]), result.vm_pu[ok], atol=1e-9,
                                 rtol=0):
        raise ValueError("model.v is not the operating point of `result`; "
                         "compute sensitivities right after the solve")
    n_int = model.n_bus_int

    # injection columns -> internal buses; slack and isolated buses have no effect
    n_pvpq = len(model.pvpq)
    row_p = np.full(n_int, -1, dtype=np.int64)
    row_p[model.pvpq] = np.arange(n_pvpq)
    lookup = model.net._pd2ppc_lookups["bus"]
    inj_int = np.full(len(inj_bus), -1, dtype=np.int64)
    known = (inj_bus >= 0) & (inj_bus < len(lookup))
    inj_int[known] = np.asarray(lookup[inj_bus[known]], dtype=np.int64)
    inj_int[(inj_int < 0) | (inj_int >= n_int)] = -1
    active = inj_int >= 0
    active[active] = row_p[inj_int[active]] >= 0
    if not active.any():
        return

    # islands: the Jacobian is block diagonal over them
    label, y_both = _fixed(model)
    var_label = label[np.r_[model.pvpq, model.pq]]  # island of each Jacobian row/column
    jac = model._jacobian(v, model.ybus @ v).tocsc()
    vm = np.abs(v)
    mon_int = np.where(model.bus_ok[bus_pos], model.bus_int[bus_pos], -1)
    mon_label = np.where(mon_int >= 0, label[np.maximum(mon_int, 0)], -1)

    # loadings: the side that binds at the operating point, |I| pu -> percent of the limit
    # whole-matrix products, then the rows: each row's sum is the same, in the same order
    i_f = (model.yf_b @ v)[branch_pos]
    i_t = (model.yt_b @ v)[branch_pos]
    scale = model.base_mva / SQRT3 / model.branch_kv[branch_pos]
    limit = model.branch_limit_ka[branch_pos]
    per_pu = np.divide(100.0 * scale, limit, out=np.zeros_like(limit), where=limit > 0)
    from_side = np.abs(i_f) * per_pu[:, 0] >= np.abs(i_t) * per_pu[:, 1]
    # the binding side's row of each branch: rows of [Yf; Yt] (`_block` takes them per island)
    bind_row = np.where(from_side, 0, model.yf_b.shape[0]) + branch_pos
    i_bind = np.where(from_side, i_f, i_t)
    mag = np.abs(i_bind)
    # d|I| = Re(conj(I)/|I| dI), scaled to loading percent; at zero current report 0
    unit = np.divide(np.conj(i_bind), mag, out=np.zeros_like(i_bind), where=mag > 0)
    unit *= np.where(from_side, per_pu[:, 0], per_pu[:, 1])
    br_label = label[model.f_int[branch_pos]]

    for isl in np.unique(label[inj_int[active]]):
        cols = np.flatnonzero(active & (label[np.maximum(inj_int, 0)] == isl))
        var = np.flatnonzero(var_label == isl)
        # J [dθ; d|V|] = [ΔP; 0]: one column per injection, ΔP = 1 MW in per unit
        local = np.full(jac.shape[0], -1, dtype=np.int64)
        local[var] = np.arange(len(var))
        rhs = np.zeros((len(var), len(cols)))
        rhs[local[row_p[inj_int[cols]]], np.arange(len(cols))] = 1.0 / model.base_mva
        dx = splu(_block(jac, var, local, len(var))).solve(rhs)
        buses = np.flatnonzero(label == isl)
        pos = np.full(n_int, -1, dtype=np.int64)
        pos[buses] = np.arange(len(buses))
        dtheta = np.zeros((len(buses), len(cols)))
        dvm = np.zeros((len(buses), len(cols)))
        is_p = var < n_pvpq
        dtheta[pos[model.pvpq[var[is_p]]]] = dx[is_p]
        dvm[pos[model.pq[var[~is_p] - n_pvpq]]] = dx[~is_p]
        rows = np.flatnonzero(mon_label == isl)
        br = np.flatnonzero(br_label == isl)
        dl = np.zeros((0, len(cols)))
        if len(br):
            # V = |V| e^{jθ}:  dV = V (j dθ + d|V| / |V|)
            dv_c = v[buses, None] * (1j * dtheta + dvm / vm[buses, None])
            d_i = _block(y_both, bind_row[br], pos, len(buses)) @ dv_c
            dl = (unit[br, None] * d_i).real
        yield rows, cols, dvm[pos[mon_int[rows]]], br, dl


#: per GridModel: its admittances when last seen, its islands and [Yf; Yt] (`_fixed`)
_FIXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fixed(model: GridModel) -> tuple[np.ndarray, sp.csr_matrix]:
    """The island of each internal bus of `model` and its branch admittances [Yf; Yt] (rows
    of the monitored branches, from then to side), computed once per model while its
    admittance matrices stay the same objects (a refresh reads them at every call)."""
    key = (model.ybus, model.yf_b, model.yt_b)
    got = _FIXED.get(model)
    if got is None or any(a is not b for a, b in zip(got[0], key, strict=True)):
        _, label = connected_components(model.ybus != 0, directed=False)
        got = _FIXED[model] = (key, label, sp.vstack([model.yf_b, model.yt_b], format="csr"))
    return got[1], got[2]


def _block(a: sp.csr_matrix | sp.csc_matrix, major: np.ndarray, local: np.ndarray,
           n_minor: int) -> sp.csr_matrix | sp.csc_matrix:
    """One island's block of `a` (CSR: rows `major`, CSC: columns `major`), the minor indices
    mapped through `local` (-1: not in the block, left out): what scipy's fancy indexing
    ``a[major][:, minor]`` (CSR; ``a[minor][:, major]`` CSC) gives for ascending `minor`, the
    same entries in the same order, read from the arrays (scipy's fancy indexing, two calls
    per island and matrix, took 0.25 ms a call under cProfile)."""
    start, end = a.indptr[major], a.indptr[major + 1]
    own = end - start
    at = np.repeat(start - (np.cumsum(own) - own), own) + np.arange(int(own.sum()))
    idx = local[a.indices[at]]
    keep = idx >= 0
    indptr = np.zeros(len(major) + 1, dtype=np.int64)
    np.cumsum(np.bincount(np.repeat(np.arange(len(major)), own)[keep],
                          minlength=len(major)), out=indptr[1:])
    shape = (len(major), n_minor) if a.format == "csr" else (n_minor, len(major))
    return type(a)((a.data[at[keep]], idx[keep], indptr), shape=shape)


def internal_voltage(model: GridModel, bus_pos: np.ndarray, vm_pu: np.ndarray,
                     va_degree: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """Complex voltages of `model`'s internal buses from reported magnitudes and angles of
    the pandapower buses at positions `bus_pos` (the other internal buses keep `base`, flat
    1 pu by default). Buses fused by switches share one internal bus and report the same
    voltage; NaN reports (no power-flow solution) leave the entry as it was. Internal buses no
    pandapower bus maps to (pandapower's auxiliary buses at the open end of a line switch)
    carry no injection: their voltage follows from Ybus, ``Y_aa V_a = -Y_ak V_k``."""
    v = np.ones(model.n_bus_int, dtype=complex) if base is None else base.copy()
    pos = np.asarray(bus_pos, dtype=np.int64)
    known = model.bus_ok[pos] & np.isfinite(vm_pu) & np.isfinite(va_degree)
    v[model.bus_int[pos[known]]] = vm_pu[known] * np.exp(1j * np.deg2rad(va_degree[known]))
    mapped = np.zeros(model.n_bus_int, dtype=bool)
    mapped[model.bus_int[model.bus_ok]] = True
    aux = np.flatnonzero(~mapped)
    if len(aux):
        rest = np.flatnonzero(mapped)
        y = model.ybus
        v[aux] = spsolve(y[aux][:, aux].tocsc(), -(y[aux][:, rest] @ v[rest]))
    return v
