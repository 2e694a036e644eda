"""Scheme outcomes at a step with real distribution congestion (tiny, 21 July 2016 11:00:
the PV-heavy MV1.101 exports at its annual maximum and overloads a line)."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
from tsodso.coordination.need import assess, unserved_value
from tsodso.coordination.schemes import scheme_names
from tsodso.core.vocabulary import UNSERVED_KEYS
from tsodso.scenarios.world import prepare
from tsodso.simulators import coordinator

from tests.conftest import make_scenario
from tsodso.runner import run

STRESS = "2016-07-21T11:00:00"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    base = tmp_path_factory.mktemp("outcomes")
    for scheme in scheme_names():
        path = base / f"{scheme}.h5"
        kpis = run(make_scenario(steps=1, start=STRESS), scheme, path)
        with h5py.File(path) as f:
            out[scheme] = dict(
                kpis=kpis,
                loading=f["grids/MV1.101/branch_loading_percent"][0],
                acts=sorted(zip(f["activations/resource"].asstr()[:],
                                f["activations/buyer"].asstr()[:],
                                np.round(f["activations/mw"][:], 6), strict=True)))
    return out


def test_the_step_has_d_congestion(runs):
    assert runs["none"]["loading"].max() > 110.0


def test_centralized_leaves_d_congestion_that_common_resolves(runs):
    assert runs["centralized"]["loading"].max() > 110.0
    # resolved on the linear model; the AC check keeps a small linearisation error
    assert runs["common"]["loading"].max() < 100.5
    assert runs["common"]["kpis"]["dso_paid_eur"] > 0
    social = {s: runs[s]["kpis"]["social_cost_eur"] for s in ("common", "centralized")}
    assert social["common"] < social["centralized"]


def test_integrated_without_brp_trading_is_common(tmp_path, runs):
    sc = make_scenario(steps=1, start=STRESS, extra="[market]\nbrp_trading = false\n")
    path = tmp_path / "i.h5"
    kpis = run(sc, "integrated", path)
    with h5py.File(path) as f:
        acts = sorted(zip(f["activations/resource"].asstr()[:], f["activations/buyer"].asstr()[:],
                          np.round(f["activations/mw"][:], 6), strict=True))
    assert acts == runs["common"]["acts"]
    assert kpis["social_cost_eur"] == pytest.approx(runs["common"]["kpis"]["social_cost_eur"])
    # with trading, BRPs buy against their own imbalance
    assert runs["integrated"]["kpis"]["brp_paid_eur"] > 0


@pytest.fixture(scope="module")
def step_inputs():
    """The coordinator's inputs at the stress step (grid reports before activations)."""
    captured = {}
    original = coordinator.CoordinatorSim._clear

    def capture(self, k, time):
        captured.setdefault("reports", copy.deepcopy(self.reports))
        return original(self, k, time)

    coordinator.CoordinatorSim._clear = capture
    try:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            run(make_scenario(steps=1, start=STRESS), "none", Path(tmp) / "n.h5")
    finally:
        coordinator.CoordinatorSim._clear = original
    return captured["reports"]


def _linear_cost(common, x_slot, need, reports) -> float:
    """Social cost of a dispatch on the common market's linear model: its resource cost plus
    the unserved quantities it predicts, valued by the same function as the results' social
    cost (D limits as the market aims at them, i.e. tightened by its safety margins)."""
    book, step_h = common.book, common.step_h
    signed = book.direction * x_slot
    q = dict.fromkeys(UNSERVED_KEYS, 0.0)
    q["imbalance_mwh"] = abs(need - signed.sum()) * step_h
    flow = common.t_flow(reports) + common.tm.ptdf[:, book.t_bus] @ signed
    q["overload_t_mwh"] = np.maximum(np.abs(flow) - common.tm.limit_mw, 0).sum() * step_h
    xp = np.bincount(common.pools.pool_of, weights=signed, minlength=common.pools.n)
    state = common.dg.state(reports)
    for dr in common.rows:
        st = state[dr.grid]
        vm = st.vm + dr.dv @ xp[dr.pools] + (dr.hv @ xp if dr.hv is not None else 0.0)
        ld = np.nan_to_num(st.loading) + dr.dl @ xp[dr.pools]
        volt = np.maximum(vm - st.vm_max, 0) + np.maximum(st.vm_min - vm, 0)
        q["voltage_d_puh"] += volt.sum() * step_h
        q["overload_d_mwh"] += (dr.rating_mva / 100.0
                                * np.maximum(ld - st.loading_max, 0)).sum() * step_h
    value = unserved_value(q, common.pen)
    return float(book.price @ x_slot) * step_h + sum(value.values())


def test_the_market_minimises_the_social_cost_it_predicts(step_inputs):
    """The joint market's LP objective equals the social cost of its own dispatch on its
    linear model (same terms, same units, same values), up to the tie-breaking perturbation."""
    sc = make_scenario(steps=1, start=STRESS)
    ctx = prepare(sc, "common")
    common = ctx.scheme
    offers = ctx.portfolio.offer(0)
    common.book.update(offers.mw, offers.price)
    needs = assess(0, step_inputs, ctx.limits)
    outcome = common.clear(needs, step_inputs)
    lp = common.market.lp
    objective = lp.highs.getInfo().objective_function_value * common.step_h
    perturbation = 1e-5 * len(common.pools.price) * outcome.activated.sum() * common.step_h
    social = _linear_cost(common, outcome.activated, needs.tso_need_mw, step_inputs)
    assert social > 1.0  # a real step: something is bought or left unserved
    assert objective == pytest.approx(social, abs=perturbation + 1e-6)


def test_common_is_cheapest_on_the_linear_model(step_inputs):
    sc = make_scenario(steps=1, start=STRESS)
    contexts = {s: prepare(sc, s) for s in scheme_names()}
    common = contexts["common"].scheme
    needs = assess(0, step_inputs, contexts["common"].limits)
    costs = {}
    for s, ctx in contexts.items():
        offers = ctx.portfolio.offer(0)  # the providers' bids of the step
        ctx.scheme.book.update(offers.mw, offers.price)
        outcome = ctx.scheme.clear(needs, step_inputs)
        costs[s] = _linear_cost(common, outcome.activated, needs.tso_need_mw, step_inputs)
    tie_tolerance = 1e-5 * len(common.book) * 10.0 * common.step_h
    for c in costs.values():
        assert costs["common"] <= c + tie_tolerance + 1e-6, costs
    assert costs["common"] < costs["centralized"] - 1.0, costs
    assert costs["none"] > costs["centralized"], costs


def test_decomposed_common_resolves_and_costs_no_less(tmp_path, runs):
    sc = make_scenario(steps=1, start=STRESS, extra="[market]\ncommon_decomposed = true\n")
    path = tmp_path / "dec.h5"
    kpis = run(sc, "common", path)
    with h5py.File(path) as f:
        assert f["grids/MV1.101/branch_loading_percent"][0].max() < 100.5
    assert kpis["dso_paid_eur"] > 0
    assert kpis["social_cost_eur"] >= runs["common"]["kpis"]["social_cost_eur"] - 1e-6


def test_shared_balancing_settles_each_dso_for_its_own_grid(step_inputs):
    """The DSOs' activations come grid by grid (in the run's order), each bought by its own
    grid's DSO at its slot's price, slot order within a grid, and the TSO's after them; the
    DSOs' MW per grid add up to what the scheme activated there."""
    sc = make_scenario(steps=1, start=STRESS)
    ctx = prepare(sc, "shared_balancing")
    scheme = ctx.scheme
    offers = ctx.portfolio.offer(0)
    scheme.book.update(offers.mw, offers.price)
    outcome = scheme.clear(assess(0, step_inputs, ctx.limits), step_inputs)
    dso = [a for a in outcome.activations if a.buyer != "TSO"]
    assert dso and outcome.activations[:len(dso)] == dso
    grids = list(ctx.dso_grids)
    assert [grids.index(a.grid) for a in dso] == sorted(grids.index(a.grid) for a in dso)
    assert all(a.buyer == f"DSO:{a.grid}" for a in dso)
    slot = {r: i for i, r in enumerate(scheme.book.resource.tolist())}
    for g in grids:
        mine = [slot[a.resource] for a in dso if a.grid == g]
        assert mine == sorted(mine)
        tso_mw = sum(a.mw for a in outcome.activations if a.buyer == "TSO" and a.grid == g)
        total = outcome.activated[scheme.book.grid == g].sum()
        assert sum(a.mw for a in dso if a.grid == g) + tso_mw == pytest.approx(total)
