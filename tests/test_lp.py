"""The market LP core: each constraint family adds exactly its rows and columns, and a
hand-computed 3-bus case (T congestion, D voltage with interface coupling, a party) clears as
worked out by hand through the shared core."""

from __future__ import annotations

import numpy as np
import pytest
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
)
from tsodso.coordination.lp import (
    TIE_EPS,
    VOLTAGE_STEP_PU,
    DRows,
    MarketLP,
    Solution,
)
from tsodso.coordination.market import DState, FlexMarket

STEP_H = 0.25
PEN_V = 1e4  # EUR per bus-hour at 0.01 pu: high enough that the voltage rows bind
# 3-bus ring, equal reactances, slack bus 0; rows: line 0-1, 1-2, 0-2 (from -> to)
PTDF3 = np.array([
    [0.0, -2 / 3, -1 / 3],
    [0.0, 1 / 3, -1 / 3],
    [0.0, -1 / 3, -2 / 3],
])


def _count(lp: MarketLP) -> tuple[int, int]:
    """(rows, columns) the families have added, counted from their recorded indices."""
    rows = sum(f.n for f in lp.rows.values()) + sum(len(r) for r in lp.extra_rows.values())
    cols = sum(len(c) for c in lp.columns.values())
    assert (rows, cols) == (lp.n_rows, lp.n_cols)
    return rows, cols


def _drows() -> list[DRows]:
    # one D grid with pools 0 and 2: 2 buses (the second insensitive), 1 branch
    dv = np.array([[0.01, 0.002], [0.0, 1e-9]])
    dl = np.array([[1.0, -0.5]])
    hv = np.array([0.0, 0.001, 0.0])
    return [DRows("D1", np.array([0, 2]), dv, dl, np.array([10.0]), hv)]


def test_each_family_adds_exactly_its_rows_and_columns():
    lp = MarketLP("t", np.array([1.0, -1.0, 1.0]))
    define_offers(lp)
    assert _count(lp) == (0, 3) and len(np.concatenate(lp.cost_cols)) == 3
    define_balance(lp, {"a": np.array([0, 1]), "b": np.array([2])}, 100.0)
    assert _count(lp) == (2, 3 + 4) and lp.rows["balance"].n == 2
    define_parties(lp, ["BRP:x"], 100.0)
    assert _count(lp) == (2 + 3 + 2, 7 + 3 + 4)  # share row per pool, a row per direction
    t_rows = define_transmission(lp, np.array([1, 0, -1]), PTDF3, 50.0)
    # pool 1 sits at the slack bus and pool 2 has no T bus: only bus-1 pool 0 moves flows
    assert t_rows.tolist() == [0, 1, 2]
    assert _count(lp) == (7 + 3, 14 + 6) and lp.rows["t"].n == 3
    drows = _drows()
    define_interface_voltage(lp, drows)
    assert _count(lp) == (10 + 1, 20 + 1)
    vrows = define_distribution_voltage(lp, drows, 40.0)
    assert vrows == [(0, 0)]  # the insensitive bus is left out
    assert _count(lp) == (11 + 2, 21 + 2)
    lrows = define_distribution_loading(lp, drows, 50.0)
    assert lrows == [(0, 0)]
    assert _count(lp) == (13 + 1, 23 + 1)
    n_terms = len(np.concatenate(lp.cost_cols))
    assert n_terms == 3 + 4 + 4 + 6 + 2 + 1  # x, area slacks, party slacks, T, V, L slacks
    define_objective(lp)
    assert _count(lp) == (14, 24)
    coefs = dict(zip(np.concatenate(lp.cost_cols).tolist(),
                     np.concatenate(lp.cost_coefs).tolist(), strict=True))
    assert coefs[lp.columns["ovu"][0]] == pytest.approx(40.0 / VOLTAGE_STEP_PU)
    assert coefs[lp.columns["ovl"][0]] == pytest.approx(50.0 * 10.0 / 100.0)


def test_transmission_tolerance_leaves_out_rows_nothing_moves():
    lp = MarketLP("t", np.array([1.0, 1.0]))
    define_offers(lp)
    ptdf = np.array([[0.5, 1e-8], [0.0, 1e-8], [0.0, 0.0]])
    assert define_transmission(lp, np.array([0, 1]), ptdf, 1.0).tolist() == [0]
    lp2 = MarketLP("t2", np.array([1.0, 1.0]))
    define_offers(lp2)
    assert define_transmission(lp2, np.array([0, 1]), ptdf, 1.0, tol=1e-9).tolist() == [0, 1]


def _market(**kw) -> FlexMarket:
    # pools: 0 cheap up at bus 1 (in D1), 1 dear up at bus 0 (T), 2 up in D1 at bus 2
    return FlexMarket(np.array([1, 1, 1]), np.array([1, 0, 2]), STEP_H, 1000.0, 500.0, PEN_V,
                      ptdf=PTDF3, areas={"system": np.arange(3)}, **kw)


def test_hand_computed_three_bus_case():
    """Need 70 MW up from pools at bus 1 (20 EUR/MWh), bus 0 (50) and bus 2 (30), 100 MW each.

    Line 0-1 (limit 20 MW) carries 2/3 of pool 0 and 1/3 of pool 2: 2 x0 + x2 <= 60. With
    x1 = 70 - x0 - x2 the cost is 3500 - 30 x0 - 20 x2, best at x0 = 0, x2 = 60 (1200 saved,
    against 900 at x0 = 30): x = (0, 10, 60), and the next MW comes from pool 1 at 50.

    A D voltage row on pools 0 and 2 (0.01 and 0.002 pu/MW, 0.05 pu headroom) adds
    5 x0 + x2 <= 25: then x = (0, 45, 25). Pool 2's shadow on that row is 30 - 50 = -20 per
    0.002 pu, so pool 0 (0.01 pu/MW) is worth 50 - 100 = -50 at its location.
    """
    mk = _market()
    mw = np.full(3, 100.0)
    price = np.array([20.0, 50.0, 30.0])
    limit = np.array([20.0, np.inf, np.inf])
    r = mk.clear(mw, price, need={"system": 70.0}, t_flow0=np.zeros(3), t_limit=limit)
    assert np.allclose(r.x, [0.0, 10.0, 60.0])
    assert r.unserved == {"system": pytest.approx(0.0)}
    assert r.objective == pytest.approx((10 * 50 + 60 * 30) * STEP_H)
    assert r.balance_price["system"] == pytest.approx(50.0, abs=3 * TIE_EPS)

    dr = [DRows("D1", np.array([0, 2]), np.array([[0.01, 0.002]]), np.zeros((0, 2)),
                np.zeros(0))]
    mk = _market(drows=dr)
    st = {"D1": DState(np.array([1.0]), np.zeros(0), 0.9, 1.05, 100.0)}
    r = mk.clear(mw, price, need={"system": 70.0}, t_flow0=np.zeros(3), t_limit=limit,
                 d_state=st)
    assert np.allclose(r.x, [0.0, 45.0, 25.0])
    assert r.balance_price["system"] == pytest.approx(50.0, abs=3 * TIE_EPS)
    assert r.value == pytest.approx([-50.0, 50.0, 30.0], abs=1e-3)


def test_interface_voltage_moves_every_d_bus():
    """A T pool that raises the D grid's interface voltage by 0.001 pu/MW uses up the D bus's
    headroom (0.02 pu): at most 20 MW from it, the rest from the dearer T pool."""
    hv = np.array([0.0, 0.0, 0.001])
    dr = [DRows("D1", np.array([0]), np.array([[1e-3]]), np.zeros((0, 1)), np.zeros(0), hv)]
    mk = FlexMarket(np.array([1, 1, 1]), np.full(3, -1), STEP_H, 1000.0, 500.0, PEN_V,
                    drows=dr, areas={"system": np.arange(3)})
    st = {"D1": DState(np.array([1.03]), np.zeros(0), 0.9, 1.05, 100.0)}
    r = mk.clear(np.array([0.0, 100.0, 100.0]), np.array([20.0, 50.0, 30.0]),
                 need={"system": 50.0}, d_state=st)
    assert np.allclose(r.x, [0.0, 30.0, 20.0])


def test_party_buys_against_its_own_imbalance():
    mk = FlexMarket(np.array([1, -1]), np.full(2, -1), STEP_H, 1000.0, 500.0, 40.0,
                    areas={"system": np.arange(2)}, parties=["BRP:res"])
    r = mk.clear(np.array([10.0, 10.0]), np.array([20.0, 30.0]), need={"system": 0.0},
                 party_need={"BRP:res": 4.0})
    # the party buys 4 MW up; the system balances it with 4 MW down (the TSO's view)
    assert np.allclose(r.x, [4.0, 4.0])
    assert np.allclose(r.party_x["BRP:res"], [4.0, 0.0])


def test_tie_policies():
    """'always' reports the perturbed dual; 'offered' with exact prices the true one."""
    args = (np.array([1, 1, 1]), np.full(3, -1), STEP_H, 1000.0, 500.0, 40.0)
    mw, price = np.full(3, 20.0), np.full(3, 50.0)
    for ties, exact in (("always", False), ("offered", True)):
        mk = FlexMarket(*args, areas={"system": np.arange(3)}, ties=ties)
        r = mk.clear(mw, price, need={"system": 30.0}, exact_prices=exact)
        assert np.allclose(r.x, [20.0, 10.0, 0.0])
        if exact:
            assert r.balance_price["system"] == 50.0
            assert mk.lp.n_solves == 2
        else:
            assert r.balance_price["system"] == pytest.approx(50.0 + TIE_EPS)
            assert mk.lp.n_solves == 1
    with pytest.raises(ValueError, match="tie policy"):
        FlexMarket(*args, areas={"system": np.arange(3)}, ties="never").clear(
            mw, price, need={"system": 1.0})


def test_failed_check_restarts_cold_on_the_same_model():
    mk = _market()
    mw, price = np.full(3, 100.0), np.array([20.0, 50.0, 30.0])
    limit = np.array([20.0, np.inf, np.inf])
    mk.clear(mw, price, need={"system": 10.0}, t_flow0=np.zeros(3), t_limit=limit)
    check, calls = mk.lp.checked, []

    def reject_first(status):
        calls.append(1)
        return None if len(calls) == 1 else check(status)

    mk.lp.checked = reject_first
    highs = mk.lp.highs
    r = mk.clear(mw, price, need={"system": 60.0}, t_flow0=np.zeros(3), t_limit=limit)
    assert mk.lp.n_cold_restarts == 1 and mk.lp.highs is highs
    assert np.allclose(r.x, [0.0, 0.0, 60.0])
    # and the next step warm-starts the fresh HiGHS model with the right numbers
    mk.lp.checked = check
    r = mk.clear(mw, price, need={"system": 30.0}, t_flow0=np.zeros(3), t_limit=limit)
    assert np.allclose(r.x, [30.0, 0.0, 0.0])


def test_refreshed_d_coefficients_clear_as_computed_by_hand_and_survive_a_cold_start():
    """The case above with the D row's sensitivities swapped after the build (0.002 and
    0.01 pu/MW): x0 + 5 x2 <= 25 and 2 x0 + x2 <= 60; the saving 30 x0 + 20 x2 is best at
    x0 = 25, x2 = 0, so x = (25, 45, 0). The row's shadow price is 30 EUR/MWh per 0.002 pu,
    so pool 2 (0.01 pu/MW) is worth 50 - 150 = -100 at its location."""
    dr = [DRows("D1", np.array([0, 2]), np.array([[0.01, 0.002]]), np.zeros((0, 2)),
                np.zeros(0))]
    mk = _market(drows=dr)
    mw, price = np.full(3, 100.0), np.array([20.0, 50.0, 30.0])
    limit = np.array([20.0, np.inf, np.inf])
    st = {"D1": DState(np.array([1.0]), np.zeros(0), 0.9, 1.05, 100.0)}
    kw = dict(need={"system": 70.0}, t_flow0=np.zeros(3), t_limit=limit, d_state=st)
    assert np.allclose(mk.clear(mw, price, **kw).x, [0.0, 45.0, 25.0])  # warm basis there
    highs = mk.lp.highs
    mk.update_drows([DRows("D1", np.array([0, 2]), np.array([[0.002, 0.01]]),
                           np.zeros((0, 2)), np.zeros(0))])
    r = mk.clear(mw, price, **kw)
    assert np.allclose(r.x, [25.0, 45.0, 0.0])
    assert r.value == pytest.approx([20.0, 50.0, -100.0], abs=1e-3)
    assert sum(r.parts.values()) == pytest.approx(r.value, abs=1e-3)  # parts use the new rows
    assert mk.lp.highs is highs  # the HiGHS model was updated, not rebuilt

    check, calls = mk.lp.checked, []

    def reject_first(status):
        calls.append(1)
        return None if len(calls) == 1 else check(status)

    mk.lp.checked = reject_first  # force a cold restart: solver data and basis cleared
    r = mk.clear(mw, price, **kw)
    assert mk.lp.n_cold_restarts == 1
    assert np.allclose(r.x, [25.0, 45.0, 0.0])  # the refreshed coefficients were kept


def test_highs_holds_the_kept_arrays():
    """The LP handed to HiGHS is the one `MarketLP` keeps (matrix, bounds, costs): a PTDF entry
    HiGHS would drop as too small (5e-10 <= its 1e-9) is left out of both, and a D grid
    without interface coupling has its ``u`` fixed at 0 with no entry in its voltage rows."""
    ptdf = PTDF3.copy()
    ptdf[1, 2] = 5e-10
    dr = [DRows("D1", np.array([0, 2]), np.array([[0.01, 0.002]]), np.zeros((0, 2)),
                np.zeros(0))]
    mk = FlexMarket(np.array([1, 1, 1]), np.array([1, 0, 2]), STEP_H, 1000.0, 500.0, PEN_V,
                    ptdf=ptdf, drows=dr, areas={"system": np.arange(3)}, ptdf_tol=1e-12)
    lp = mk.lp
    h = lp.highs.getLp()
    am = h.a_matrix_
    a = sp.csc_matrix((np.asarray(am.value_), np.asarray(am.index_), np.asarray(am.start_)),
                      shape=(h.num_row_, h.num_col_))
    kept = lp._rows_matrix(np.arange(lp._ao.shape[0]))  # x entries and the others, placed
    assert abs(a - kept).max() == 0.0 and a.nnz == kept.nnz
    # the very arrays HiGHS holds, entry for entry (a rebuild passes them as they are)
    assert np.array_equal(kept.indptr, am.start_) and np.array_equal(kept.indices, am.index_)
    assert np.array_equal(kept.data, am.value_)
    assert np.array_equal(h.col_lower_, lp._lb) and np.array_equal(h.col_upper_, lp._ub)
    assert np.array_equal(h.col_cost_, lp._col_cost)
    assert np.array_equal(h.row_lower_, lp._rlo) and np.array_equal(h.row_upper_, lp._rhi)
    t1 = lp.row_index["t"][1]  # branch 1-2: pool 0 (bus 1) only, the 5e-10 of pool 2 dropped
    assert lp._ax[t1].nonzero()[1].tolist() == [0]
    u = lp.col_index["u"][0]
    assert lp._lb[u] == lp._ub[u] == 0.0
    v_rows = np.r_[lp.row_index["v_up"], lp.row_index["v_dn"]]
    assert a[v_rows][:, u].nnz == 0
    assert lp.extra_index["hv"].size == 0


def test_activity_without_activated_pools_is_the_whole_product_bit_for_bit():
    """`MarketLP._x_product` skips the matrix when no pool is activated: the product is then
    +0.0 in every row, as scipy's ``_ax @ x`` gives it (negative coefficients and -0.0
    activations included: signed-zero terms summed from +0.0); with a pool activated it is
    scipy's product (row 0: 1e16 + 1 - 1e16 in stored order, 0.0)."""
    lp = MarketLP("t", np.ones(4))
    lp._ax = sp.csr_matrix((np.array([1e16, 1.0, -1e16, -2.0, -3.0]),
                            np.array([0, 1, 2, 3, 0]), np.array([0, 3, 4, 5])), shape=(3, 4))
    for x in (np.zeros(4), np.array([-0.0, 0.0, -0.0, -0.0])):
        got = lp._x_product(x)
        assert got.tobytes() == (lp._ax @ x).tobytes() == np.zeros(3).tobytes()
    x = np.array([1.0, 1.0, 1.0, -0.5])
    got = lp._x_product(x)
    assert got.tolist() == [0.0, 1.0, -3.0]
    assert got.tobytes() == (lp._ax @ x).tobytes()


def test_value_part_is_the_rows_product_bit_for_bit():
    """`MarketLP.value_part` sums ``A[r, p] * dual_r`` per pool over the rows with a dual, in
    the order of `rows`, as scipy's ``_ax[rows].T @ dual`` does: pool 0 gets 1e16, -1e16
    and 1 from rows 2, 1, 0 (in that order: 1.0; in row order 1 - 1e16 + 1e16 is 0.0), pool
    1 only 3 from row 0, pool 2 nothing (row 3 has no dual: it adds nothing)."""
    lp = MarketLP("t", np.ones(3))
    lp._ax = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [-1e16, 0.0, 0.0], [1e16, 0.0, 0.0],
                                     [0.0, 0.0, 7.0]]))
    dual = np.array([1.0, 1.0, 1.0, 0.0])
    sol = Solution(np.zeros(3), np.zeros(3), dual)
    rows = np.array([2, 1, 0, 3])
    got = lp.value_part(sol, rows)
    assert got.tolist() == [1.0, 3.0, 0.0]
    assert got.tobytes() == np.asarray(lp._ax[rows[:3]].T @ dual[rows[:3]]).ravel().tobytes()
    assert lp.value_part(sol, np.array([0, 1, 2])).tolist() == [0.0, 3.0, 0.0]
    rng = np.random.default_rng(3)
    lp = MarketLP("t", np.ones(50))
    lp._ax = sp.random(40, 50, density=0.4, random_state=rng, format="csr")
    dual = np.where(rng.random(40) < 0.5, rng.normal(size=40), 0.0)
    rows = rng.permutation(40)
    keep = rows[dual[rows] != 0.0]
    want = np.asarray(lp._ax[keep].T @ dual[keep]).ravel()
    assert lp.value_part(Solution(np.zeros(50), np.zeros(50), dual), rows).tobytes() \
        == want.tobytes()
