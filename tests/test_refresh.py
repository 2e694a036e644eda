"""The per-step refresh of the D grids' linear model does in place, block by block, what a full
recomputation does: the D rows written into a market LP (`FlexMarket.update_drows`, and the
screening's reach parts `Reach.update`) equal those of a market built from the same rows, and
the sensitivities of the grids `DGridView.refresh` re-linearises equal a recomputation of all
of them at the same voltages."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from tsodso.coordination.dnetwork import _block, internal_voltage, sensitivities
from tsodso.coordination.lp import COEF_TOL, DRows
from tsodso.coordination.market import DState, FlexMarket

N_POOLS = 9
# three D grids: their pools (one listed out of order) and (buses, branches)
GRIDS = {"A": (np.array([0, 1, 2]), 3, 2), "B": (np.array([5, 3, 4]), 2, 2),
         "C": (np.array([6, 7, 8]), 4, 1)}
DIRECTION = np.array([1, -1, 1, 1, -1, 1, -1, 1, 1], dtype=float)
HV = np.array([0.01, 0.0, 0.003, 0.002, 0.0, 0.004, 0.001, 0.0, 0.002])  # interface, per pool


def _drows(seed: int) -> list[DRows]:
    """Random D rows of the three grids: every row has a coefficient well above COEF_TOL
    (so a build keeps every row) and some below it (left out or written as 0)."""
    rng = np.random.default_rng(seed)
    out = []
    for g, (pools, n_bus, n_branch) in GRIDS.items():
        dv = rng.uniform(-0.02, 0.02, (n_bus, len(pools)))
        dl = rng.uniform(-3.0, 3.0, (n_branch, len(pools)))
        for m in (dv, dl):
            m[rng.random(m.shape) < 0.3] = rng.uniform(-0.5, 0.5) * COEF_TOL
            m[:, 0] = 0.01 + np.abs(m[:, 0])
        out.append(DRows(g, pools, dv, dl, np.full(n_branch, 10.0), HV))
    return out


def _market(drows: list[DRows]) -> FlexMarket:
    return FlexMarket(DIRECTION, np.full(N_POOLS, -1), 0.25, 1e3, 1e3, 1e3, drows=drows,
                      areas={"system": np.arange(N_POOLS)})


def _entries(m: sp.csr_matrix) -> sp.csr_matrix:
    """`m` without its explicit zeros, indices sorted: the matrix as numbers."""
    m = m.tocsr(copy=True)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def _same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    a, b = _entries(a), _entries(b)
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def test_refreshed_rows_and_reach_equal_a_market_built_from_them():
    """A market refreshed twice (the first refresh changes the rows' pattern, the second,
    of grids A and C only, is written in place) holds the same matrix, the same reach parts
    and clears as a market built from the final rows (the build drops coefficients below
    COEF_TOL; the refresh writes them as zeros, which are no entries)."""
    first, second, third = _drows(1), _drows(2), _drows(3)
    mk = _market(first)
    mk.update_drows(second)
    ax, parts = mk.lp._ax, list(mk.lp.reach.b)
    refreshed = [third[0], third[2]]
    mk.update_drows(refreshed)
    assert mk.lp._ax is ax  # the pattern stayed: written in place
    assert all(b is was for b, was in zip(mk.lp.reach.b, parts, strict=True))
    final = [third[0], second[1], third[2]]
    built = _market(final)
    lp, ref = mk.lp, built.lp
    assert _same(lp._ax, ref._ax)
    assert np.array_equal(lp.reach.rows, ref.reach.rows)
    for side, (b, b_ref) in enumerate(zip(lp.reach.b, ref.reach.b, strict=True)):
        assert _same(b, b_ref), side
    mw = np.linspace(1.0, 9.0, N_POOLS)
    for got, want in zip(lp.reach.bounds(mw), ref.reach.bounds(mw), strict=True):
        assert np.array_equal(got, want)
    # and a clearing against the new rows: both markets give the same optimum
    state = {g: DState(np.full(n_bus, 1.0), np.full(n_br, 95.0), 0.97, 1.03, 100.0)
             for g, (_, n_bus, n_br) in GRIDS.items()}
    price = np.linspace(10.0, 50.0, N_POOLS)
    r = mk.clear(mw, price, need={"system": 12.0}, d_state=state)
    r_ref = built.clear(mw, price, need={"system": 12.0}, d_state=state)
    np.testing.assert_allclose(r.x, r_ref.x, rtol=0, atol=1e-9)
    assert r.x.sum() > 0


def test_refresh_rewrites_the_rows_without_the_zeroed_coefficients():
    """A coefficient that falls below COEF_TOL at a refresh is 0 in the LP (as at a build),
    and comes back at the next refresh that lifts it."""
    rows = _drows(4)
    mk = _market(rows)
    k = mk._vrows.index((0, 1))  # grid A's bus 1
    r_up = mk.lp.row_positions("v_up")[k]
    small = replace(rows[0], dv=rows[0].dv.copy())
    small.dv[1, 2] = 0.5 * COEF_TOL
    mk.update_drows([small])
    assert mk.lp._ax[r_up, 2] == 0.0
    big = replace(rows[0], dv=rows[0].dv.copy())
    big.dv[1, 2] = 0.0123
    mk.update_drows([big])
    assert mk.lp._ax[r_up, 2] == 0.0123 * DIRECTION[2]


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_island_block_is_scipys_fancy_index(fmt):
    """`dnetwork._block` gives the same arrays (entries, their order, explicit zeros) as
    scipy's ``a[major][:, minor]`` (CSC: ``a[minor][:, major]``) for ascending `minor`, also
    where a major slice has entries outside the block and indices out of order."""
    rng = np.random.default_rng(5)
    a = sp.random(30, 30, density=0.2, random_state=6, format=fmt)
    a.data[::7] = 0.0  # explicit zeros stay
    a.indices[a.indptr[3]:a.indptr[4]] = a.indices[a.indptr[3]:a.indptr[4]][::-1].copy()
    a.has_sorted_indices = False
    major = np.sort(rng.choice(30, 12, replace=False))
    minor = np.sort(rng.choice(30, 18, replace=False))
    local = np.full(30, -1)
    local[minor] = np.arange(len(minor))
    got = _block(a, major, local, len(minor))
    want = a[major][:, minor] if fmt == "csr" else a[minor][:, major]
    want = want.asformat(fmt)
    assert got.format == fmt and got.shape == want.shape
    assert np.array_equal(got.indptr, want.indptr)
    assert np.array_equal(got.indices, want.indices)
    assert np.array_equal(got.data, want.data)


def test_refresh_of_one_grid_equals_a_recomputation_of_all():
    """`DGridView.refresh` of one of tiny's two D grids at a reported state writes that
    grid's blocks only; the whole sensitivity matrices then equal a recomputation of all
    grids at the voltages of that state (the other grid at its first operating point)."""
    from tsodso.scenarios.load import load
    from tsodso.scenarios.world import prepare

    ctx = prepare(load("tiny", {}), "common")
    dg = replace(ctx.scheme.dg, refresh_vm_pu=0.0, refresh_loading_percent=0.0)
    rt = ctx.levels["D"]
    k = 40
    res = rt.model.solve(*(a[k] for a in (rt.re_load_p, rt.re_load_q, rt.re_sgen_p,
                                          rt.re_sgen_q, rt.re_sto_p, rt.re_sto_q)))
    g = dg.grids[1]
    sl = rt.grids[g]
    reports = {g: SimpleNamespace(vm_pu=res.vm_pu[sl.bus], va_degree=res.va_degree[sl.bus],
                                  loading_percent=res.loading_percent[sl.branch],
                                  converged=True)}
    m = dg.model
    before = m.sens.dv_dp.copy()
    assert dg.refresh(reports) == [g]
    gm = m.grid_model
    v = internal_voltage(gm, dg.bus[g], reports[g].vm_pu, reports[g].va_degree, m.v0)
    full = sensitivities(gm, None, m.sens.inj_bus, m.sens.bus, m.sens.branch, v=v)
    assert np.array_equal(m.sens.dv_dp, full.dv_dp)
    assert np.array_equal(m.sens.dl_dp, full.dl_dp)
    other = dg.bus[dg.grids[0]]
    assert np.array_equal(m.sens.dv_dp[other], before[other])  # the other grid untouched
    assert not np.array_equal(m.sens.dv_dp[dg.bus[g]], before[dg.bus[g]])  # this one moved
