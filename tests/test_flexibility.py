"""Flexible resources: availability from forecasts and state of charge; activation effects."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.scenarios.load import parse
from tsodso.simulators.flexibility import GridAssets, Portfolio


def _grid():
    return GridAssets(
        name="MV1", level="D",
        sgen_kind=np.array(["pv", "pv", "wind"]), sgen_bus=np.array([1, 1, 2]),
        load_bus=np.array([1]), sto_bus=np.array([2]),
        sto_rating=np.array([2.0]), sto_e_min=np.array([0.0]), sto_e_max=np.array([1.0]),
        sto_e0=np.array([0.9]),
        fc_load=np.array([[4.0], [4.0]]), fc_sgen=np.array([[2.0, 6.0, 10.0], [1.0, 1.0, 0.0]]),
        fc_sto=np.array([[0.0], [0.0]]), bus_name={1: "b1", 2: "b2"})


def _t_grid(steps: int = 2):
    """A T grid without resources of its own (the balancing ladder's grid)."""
    z = np.zeros((steps, 0))
    return GridAssets(name="HV1", level="T", sgen_kind=np.array([], dtype=str),
                      sgen_bus=np.array([], dtype=int), load_bus=np.array([], dtype=int),
                      sto_bus=np.array([], dtype=int), sto_rating=np.zeros(0),
                      sto_e_min=np.zeros(0), sto_e_max=np.zeros(0), sto_e0=np.zeros(0),
                      fc_load=z, fc_sgen=z, fc_sto=z, bus_name={})


@pytest.fixture
def portfolio():
    sc = parse('name = "x"\n[flexibility.balancing]\nblocks = 1\nblock_mw = 7.0\n', "t")
    return Portfolio(sc.flexibility, [_t_grid(), _grid()], lambda g, b: 0, 0, step_h=0.25)


def _slot(p, resource_part, direction):
    hits = [i for i, r in enumerate(p.book.resource)
            if resource_part in r and p.book.direction[i] == direction]
    assert len(hits) == 1, hits
    return hits[0]


def test_availability(portfolio):
    book = portfolio.offer(0)
    share = portfolio.flex
    assert book.mw[_slot(portfolio, "pv@b1", -1)] == pytest.approx(8.0 * share.pv.share)
    assert book.mw[_slot(portfolio, "wind@b2", -1)] == pytest.approx(10.0 * share.wind.share)
    assert book.mw[_slot(portfolio, "load@b1", 1)] == pytest.approx(4.0 * share.load.share)
    # storage: 0.9 MWh of 1.0 -> down (charge) limited by energy: 0.1 MWh / 0.25 h = 0.4 MW
    assert book.mw[_slot(portfolio, "storage@b2", -1)] == pytest.approx(0.4)
    # up (discharge): min(0.8 * 2 MW, 0.9 MWh / 0.25 h) = 1.6 MW
    assert book.mw[_slot(portfolio, "storage@b2", 1)] == pytest.approx(1.6)
    assert book.mw[_slot(portfolio, "balancing:up1", 1)] == pytest.approx(7.0)
    assert np.all(portfolio.book.kind[[_slot(portfolio, "pv@b1", -1)]] == "pv")


def test_activation_spreads_and_updates_soc(portfolio):
    book = portfolio.offer(0)
    act = np.zeros(len(book))
    act[_slot(portfolio, "pv@b1", -1)] = 2.0  # curtail 2 MW, spread 2:6 over the two PV units
    act[_slot(portfolio, "storage@b2", 1)] = 1.0  # discharge 1 MW for 0.25 h
    act[_slot(portfolio, "load@b1", 1)] = 0.2  # consume 0.2 MW less
    sp = portfolio.activate(0, act)["MV1"]
    np.testing.assert_allclose(sp.dp_sgen, [-0.5, -1.5, 0.0])
    np.testing.assert_allclose(sp.dp_sto, [-1.0])
    np.testing.assert_allclose(sp.dp_load, [-0.2])
    assert portfolio.soc["MV1"][0] == pytest.approx(0.9 - 0.25)
    book = portfolio.offer(1)
    assert book.mw[_slot(portfolio, "storage@b2", -1)] == pytest.approx(1.4)  # 0.35 MWh free
    assert book.mw[_slot(portfolio, "wind@b2", -1)] == 0.0  # no wind forecast


def test_schedule_without_corrections_is_negative_zero(portfolio):
    """With no schedule corrections a grid's net change is -(+0.0) - (+0.0) = -0.0, the value
    the sums grid by grid give (a + -0.0 leaves every imbalance as it is, -0.0 included)."""
    portfolio.offer(0)  # storage at 0.9 of 1.0 MWh, no schedule: nothing cut, no payback
    for sp in portfolio.neutral().values():
        assert sp.schedule_mw == 0.0 and np.signbit(sp.schedule_mw)
    portfolio._fix[1][:] = 0.25  # a storage schedule cut: the grid's change is -0.25 MW
    assert portfolio._schedules() == {"HV1": -0.0, "MV1": -0.25}


def test_spreading_equals_the_masked_formula_it_replaced(portfolio):
    """`_changes` reads each element's slot from masks made once (`_spread`); the formula it
    replaced built them every call: the same stacked changes, bit for bit (signed zeros
    included), for random activations of every slot."""
    rng = np.random.default_rng(3)
    book = portfolio.offer(0)
    for _ in range(5):
        act = np.where(rng.random(len(book)) < 0.6, rng.uniform(0.0, 1.0, len(book)), 0.0)
        got = portfolio._changes(act * book.mw)
        ratio = np.divide(act * book.mw, book.mw, out=np.zeros_like(book.mw),
                          where=book.mw > 0)
        dp = {t: np.zeros(len(portfolio._shares[t])) for t in ("load", "sgen", "storage")}
        for (table, d), w in portfolio._weights.items():
            slot = portfolio._slots[(table, d)]
            delta = np.where(slot >= 0, w * ratio[np.maximum(slot, 0)], 0.0) * d
            if table == "sgen":
                dp["sgen"] += delta
            else:
                dp[table] -= delta
        want = (dp["load"] + portfolio._fix[0], dp["sgen"], dp["storage"] + portfolio._fix[1])
        assert [a.tobytes() for a in got[:3]] == [a.tobytes() for a in want]
        assert any(np.any(a != 0) for a in got[:3])
