"""Scheme rules on the linear model, and whole runs of every scheme on `tiny`."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from tsodso.coordination.market import DState
from tsodso.coordination.schemes import scheme_names
from tsodso.scenarios.world import prepare

from tests.conftest import make_scenario
from tsodso.runner import run


@pytest.fixture(scope="module")
def local_ctx():
    return prepare(make_scenario(steps=4, start="2016-06-15T12:00:00"), "local")


def test_d_offer_caps_never_create_violations(local_ctx):
    """Whatever subset of the capped D offers the TSO takes, no D limit is newly broken."""
    scheme = local_ctx.scheme
    book = scheme.book
    rng = np.random.default_rng(5)
    mw = np.where(scheme.is_d, rng.uniform(0.0, 3.0, len(book)), 0.0)
    state = {}
    for g in local_ctx.dso_grids:
        n_bus = len(local_ctx.levels["D"].grids[g].bus)
        n_br = len(local_ctx.levels["D"].grids[g].branch)
        vm = np.full(n_bus, 1.095)  # 0.005 pu below the 1.10 limit
        vm[0] = 1.12  # one bus already above
        state[g] = DState(vm, np.full(n_br, 95.0), 0.9, 1.10, 100.0)
    caps = scheme.dg.deliverable(mw, state, no_worse=True)
    assert np.all(caps <= mw + 1e-12) and np.all(caps >= 0)
    for trial in range(20):
        take = caps * rng.uniform(0.0, 1.0, len(caps)) if trial else caps
        signed = book.direction * take
        for g, st in state.items():
            dv, dl = scheme.dg.effect(g, signed)
            vm_new, ld_new = st.vm + dv, st.loading + dl
            assert np.all(vm_new <= np.maximum(st.vm_max, st.vm) + 1e-9)
            assert np.all(vm_new >= np.minimum(st.vm_min, st.vm) - 1e-9)
            assert np.all(ld_new <= np.maximum(st.loading_max, st.loading) + 1e-7)
    # offers that lower the voltage stay available where voltage is the binding limit
    down = scheme.is_d & (book.direction == -1) & (book.kind != "load")
    assert caps[down].sum() > 0


# enough flexibility in each D grid to cover its own forecast errors in both directions
AMPLE = """
[flexibility.load]
share = 0.5
price_up = 120.0
price_down = 25.0
"""


@pytest.mark.parametrize("scheme", [s for s in scheme_names() if s != "none"])
def test_every_scheme_balances_tiny(tmp_path, scheme):
    path = tmp_path / f"{scheme}.h5"
    kpis = run(make_scenario(steps=6, start="2016-06-15T11:00:00", extra=AMPLE), scheme, path)
    with h5py.File(path) as f:
        buyers = set(f["activations/buyer"].asstr()[:])
        unserved = f["needs/unresolved_imbalance_mw"][:]
        kinds = set(f["conflicts/kind"].asstr()[:])
    assert kpis["activated_mwh"] > 0
    assert np.all(np.abs(unserved) < 1.0), unserved
    parties = {"BRP:res", "BRP:load"} if scheme == "integrated" else set()
    assert buyers <= {"TSO", "DSO:MV1.101", "DSO:MV2.101"} | parties
    if scheme == "shared_balancing":
        # the DSOs' own bids suffice, so their interfaces stay on schedule
        assert "interface_schedule_deviation" not in kinds
        assert kpis["dso_paid_eur"] > 0


def _some_state(ctx, rng) -> dict:
    """D grids near their limits (some rows violated), for the linear-model helpers."""
    state = {}
    for g in ctx.dso_grids:
        n_bus = len(ctx.levels["D"].grids[g].bus)
        n_br = len(ctx.levels["D"].grids[g].branch)
        vm = rng.uniform(1.07, 1.105, n_bus)
        vm[0] = np.nan  # a bus without a solution
        state[g] = DState(vm, rng.uniform(60.0, 105.0, n_br), 0.9, 1.10, 100.0)
    return state


@pytest.mark.parametrize("no_worse", [True, False])
def test_d_offer_caps_follow_the_row_rule(local_ctx, no_worse):
    """The caps are, per slot, its offer times the smallest headroom share of the rows it
    pushes (computed here row by row from the sensitivities), bit for bit."""
    dg = local_ctx.scheme.dg
    book = dg.book
    rng = np.random.default_rng(11)
    mw = np.where(dg.is_d, rng.uniform(0.0, 3.0, len(book)), 0.0)
    state = _some_state(local_ctx, rng)
    expect = mw.copy()
    sens = dg.model.sens
    for g in dg.grids:
        slots = np.flatnonzero((book.grid == g) & dg.is_d)
        d = book.direction[slots]
        cv = sens.dv_dp[dg.bus[g]][:, dg.cols[slots]] * d
        cl = sens.dl_dp[dg.branch[g]][:, dg.cols[slots]] * d
        st = state[g]
        vm = np.nan_to_num(st.vm, nan=1.0)
        rooms = (st.vm_max - vm, vm - st.vm_min, st.loading_max - np.nan_to_num(st.loading))
        factor = np.ones(len(slots))
        for c, room in zip((cv, -cv, cl), rooms, strict=True):
            push = np.where(c >= 1e-7, c, 0.0)
            total = push @ mw[slots]
            room = np.maximum(room, 0.0)
            for r in range(len(room)):
                a = min(room[r] / total[r], 1.0) if total[r] > 0 else 1.0
                if no_worse and room[r] <= 0:
                    a = 0.0
                pushed = push[r] > 0
                factor[pushed] = np.minimum(factor[pushed], a)
        expect[slots] = mw[slots] * factor
    caps = dg.deliverable(mw, state, no_worse=no_worse)
    assert np.array_equal(caps, expect)
    assert 0 < np.sum(caps < mw) < np.sum(mw > 0)  # some capped, not all


def test_linear_effects_equal_the_dense_products(local_ctx):
    """D grid effects and T flow shifts over the moved slots only equal the products over
    every slot (to rounding)."""
    scheme = local_ctx.scheme
    dg = scheme.dg
    rng = np.random.default_rng(3)
    signed = np.where(rng.uniform(size=len(dg.book)) < 0.05,
                      rng.uniform(-2.0, 2.0, len(dg.book)), 0.0)
    inj = np.zeros(len(dg.model.inj_col))
    d = np.flatnonzero(dg.is_d)
    np.add.at(inj, dg.cols[d], signed[d])
    dv_all, dl_all = dg.model.sens.dv_dp @ inj, dg.model.sens.dl_dp @ inj
    hv = dg.model.hv_dv @ signed
    for k, (g, (dv, dl)) in enumerate(dg.effects(signed).items()):
        np.testing.assert_allclose(dv, dv_all[dg.bus[g]] + hv[k], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(dl, dl_all[dg.branch[g]], rtol=1e-12, atol=1e-12)
    dense = scheme.tm.ptdf[:, dg.book.t_bus] @ signed
    np.testing.assert_allclose(scheme.t_shift(signed), dense, rtol=1e-12, atol=1e-9)
    assert np.all(scheme.t_shift(np.zeros(len(signed))) == 0.0)


def test_d_row_bounds_per_grid_equal_row_by_row(local_ctx):
    """The D rows' right-hand sides, filled grid by grid, equal the row-by-row reading of
    the state (NaN voltages read as 1 pu, NaN loadings as 0)."""
    market = local_ctx.scheme.dmarket
    state = _some_state(local_ctx, np.random.default_rng(4))
    for no_worse in (False, True):
        v_hi, v_lo, l_hi = market._rhs(state, no_worse)
        st = [state[market.drows[g].grid] for g, _ in market._vrows]
        vm0 = np.array([s.vm[r] for s, (_, r) in zip(st, market._vrows, strict=True)])
        vm0 = np.where(np.isfinite(vm0), vm0, 1.0)
        hi = np.array([s.vm_max for s in st]) - vm0
        lo = np.array([s.vm_min for s in st]) - vm0
        sl = [state[market.drows[g].grid] for g, _ in market._lrows]
        l0 = np.nan_to_num([s.loading[r] for s, (_, r) in zip(sl, market._lrows, strict=True)])
        lh = np.array([s.loading_max for s in sl]) - l0
        if no_worse:
            hi, lo, lh = np.maximum(hi, 0), np.minimum(lo, 0), np.maximum(lh, 0)
        assert len(v_hi) == len(market._vrows) > 0 and len(l_hi) == len(market._lrows) > 0
        assert np.array_equal(v_hi, hi) and np.array_equal(v_lo, lo)
        assert np.array_equal(l_hi, lh)


def test_internal_voltage_of_all_grids_at_once(local_ctx):
    """One `internal_voltage` over several grids' buses gives the voltages of one call per
    grid in turn (what `DGridView.refresh` did before), bit for bit."""
    from tsodso.coordination.dnetwork import internal_voltage

    dg = local_ctx.scheme.dg
    gm = dg.model.grid_model
    rng = np.random.default_rng(8)
    reps = {g: (rng.uniform(0.95, 1.05, len(dg.bus[g])), rng.uniform(-5, 5, len(dg.bus[g])))
            for g in dg.grids}
    v = dg.model.v0
    for g in dg.grids:
        v = internal_voltage(gm, dg.bus[g], *reps[g], v)
    once = internal_voltage(gm, np.concatenate([dg.bus[g] for g in dg.grids]),
                            np.concatenate([reps[g][0] for g in dg.grids]),
                            np.concatenate([reps[g][1] for g in dg.grids]), dg.model.v0)
    assert np.array_equal(v, once)
    assert not np.array_equal(once, dg.model.v0)
