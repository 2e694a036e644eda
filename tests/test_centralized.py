"""Centralized market clearing and settlement, checked against hand-computed merit orders,
a hand-computed 3-bus PTDF, and an independent LP (scipy's linprog) on a random instance."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields

import numpy as np
import pytest
from scipy.optimize import linprog
from tsodso.coordination.bid import BidBook
from tsodso.coordination.centralized import CentralizedMarket, Penalties
from tsodso.coordination.settlement import settle
from tsodso.core.records import Activation

STEP_H = 0.25
PEN = Penalties(imbalance_eur_per_mwh=1000.0, overload_eur_per_mwh=500.0)
NO_NET = np.zeros((1, 1))  # one branch nothing can move
NO_FLOW, NO_LIMIT = np.zeros(1), np.full(1, np.inf)


def book(rows) -> BidBook:
    """rows: (resource, direction, mw, price[, t_bus])"""
    full = []
    for r in rows:
        res, d, mw, price = r[:4]
        t_bus = r[4] if len(r) > 4 else 0
        full.append((res, "wind", "T1", "T", t_bus, d, mw, price))
    return BidBook.from_rows(full)


def merit_book() -> BidBook:
    return book([("a", 1, 20, 50), ("b", 1, 20, 80), ("c", 1, 20, 60), ("d", -1, 20, 10)])


def test_merit_order_up():
    bk = merit_book()
    mk = CentralizedMarket(bk, NO_NET, PEN, STEP_H)
    c = mk.clear(bk.mw, bk.price, 30.0, NO_FLOW, NO_LIMIT)
    assert c.status == "optimal"
    assert np.allclose(c.activated, [20, 0, 10, 0])
    assert c.unserved_mw == 0.0
    assert c.marginal_price == pytest.approx(60.0)
    assert c.objective == pytest.approx((20 * 50 + 10 * 60) * STEP_H)
    assert mk.n_solves == 1 and mk.n_cold_restarts == 0  # distinct prices: one checked solve

    bid = settle(bk, c, "TSO", "pay_as_bid", STEP_H)
    assert [(a.resource, a.mw, a.price) for a in bid] == [("a", 20.0, 50.0), ("c", 10.0, 60.0)]
    assert sum(a.cost for a in bid) == pytest.approx((20 * 50 + 10 * 60) * STEP_H)
    assert {a.buyer for a in bid} == {"TSO"}
    clear = settle(bk, c, "TSO", "pay_as_clear", STEP_H)
    assert [a.price for a in clear] == pytest.approx([60.0, 60.0])
    assert sum(a.cost for a in clear) == pytest.approx(30 * 60 * STEP_H)


def test_shortfall_is_unserved_and_penalised():
    bk = book([("a", 1, 30, 50), ("b", 1, 20, 70), ("d", -1, 20, 10)])
    mk = CentralizedMarket(bk, NO_NET, PEN, STEP_H)
    c = mk.clear(bk.mw, bk.price, 100.0, NO_FLOW, NO_LIMIT)
    assert np.allclose(c.activated, [30, 20, 0])
    assert c.unserved_mw == pytest.approx(50.0)
    assert c.objective == pytest.approx((30 * 50 + 20 * 70 + 50 * 1000) * STEP_H)
    # one more MW of need would also go unserved: the price is the imbalance penalty
    assert c.marginal_price == pytest.approx(1000.0)


def test_downward_need_takes_cheapest_down_bids():
    bk = book([("u", 1, 50, 5), ("d1", -1, 10, 20), ("d2", -1, 10, 5), ("d3", -1, 10, 30)])
    mk = CentralizedMarket(bk, NO_NET, PEN, STEP_H)
    c = mk.clear(bk.mw, bk.price, -15.0, NO_FLOW, NO_LIMIT)
    assert np.allclose(c.activated, [0, 5, 10, 0])
    assert c.unserved_mw == 0.0
    # one more MW of upward need = one MW less of the marginal down bid at 20
    assert c.marginal_price == pytest.approx(-20.0)
    bid = settle(bk, c, "TSO", "pay_as_bid", STEP_H)
    assert sum(a.cost for a in bid) == pytest.approx((5 * 20 + 10 * 5) * STEP_H)
    assert {a.direction for a in bid} == {-1}
    clear = settle(bk, c, "TSO", "pay_as_clear", STEP_H)
    assert [a.price for a in clear] == pytest.approx([20.0, 20.0])  # down slots receive 20
    assert sum(a.cost for a in clear) == pytest.approx(15 * 20 * STEP_H)


# 3-bus ring, equal reactances, slack bus 0; rows: line 0-1, 1-2, 0-2 (from -> to).
# 1 MW injected at bus 1 and taken at bus 0 flows 2/3 directly (1 -> 0) and 1/3 via bus 2.
PTDF3 = np.array([
    [0.0, -2 / 3, -1 / 3],
    [0.0, 1 / 3, -1 / 3],
    [0.0, -1 / 3, -2 / 3],
])


def test_congestion_forces_the_expensive_unconstrained_bid():
    bk = book([("cheap", 1, 100, 20, 1), ("dear", 1, 100, 50, 0)])
    mk = CentralizedMarket(bk, PTDF3, PEN, STEP_H)
    limit = np.array([20.0, np.inf, np.inf])
    c = mk.clear(bk.mw, bk.price, 60.0, np.zeros(3), limit)
    # line 0-1 carries 2/3 of the cheap bid: 2/3 * x <= 20  ->  x = 30, the rest (30) from bus 0
    assert np.allclose(c.activated, [30, 30])
    assert np.allclose(c.flow_mw, [-20, 10, -10])
    assert np.all(c.overload_mw == 0.0)
    assert c.marginal_price == pytest.approx(50.0)  # the next MW comes from the dear bid
    assert c.objective == pytest.approx((30 * 20 + 30 * 50) * STEP_H)


def test_congestion_relieved_by_redispatch_and_unrelievable_overload_kept():
    """No balancing need, but line 0-1 starts 10 MW above its limit: reducing injection at bus 1
    by y moves its flow by +2/3 y, so y = 15 down at bus 1 and 15 up at bus 0 (60 EUR/MWh per
    MW relieved, below the overload penalty). A fourth branch, 20 MW over its limit, cannot be
    moved by any slot: its overload stays, is reported and is penalised."""
    ptdf = np.vstack([PTDF3, np.zeros(3)])
    bk = book([("up0", 1, 100, 50, 0), ("dn1", -1, 100, 10, 1)])
    mk = CentralizedMarket(bk, ptdf, PEN, STEP_H)
    flow0 = np.array([-30.0, 0.0, 0.0, 120.0])
    limit = np.array([20.0, np.inf, np.inf, 100.0])
    c = mk.clear(bk.mw, bk.price, 0.0, flow0, limit)
    assert np.allclose(c.activated, [15, 15])
    assert c.unserved_mw == 0.0
    assert np.allclose(c.overload_mw, [0, 0, 0, 20])
    assert c.objective == pytest.approx((15 * 50 + 15 * 10 + 20 * PEN.overload_eur_per_mwh)
                                        * STEP_H)
    # too little down offer: only 6 MW at bus 1 -> line 0-1 stays 6 MW over (-30 + 4 = -26)
    mw = np.array([100.0, 6.0])
    c = mk.clear(mw, bk.price, 0.0, flow0, limit)
    assert np.allclose(c.activated, [6, 6])
    assert np.allclose(c.overload_mw, [6, 0, 0, 20])
    assert c.status == "optimal"


def test_reclearing_updates_the_same_model():
    bk = merit_book()
    mk = CentralizedMarket(bk, PTDF3, PEN, STEP_H)
    highs = mk.solver
    free = np.full(3, np.inf)
    c1 = mk.clear(bk.mw, bk.price, 30.0, np.zeros(3), free)
    assert np.allclose(c1.activated, [20, 0, 10, 0])
    # new prices, offers and need: b is now cheapest, c withdrawn
    c2 = mk.clear(np.array([20, 20, 0, 20.0]), np.array([50, 40, 60, 10.0]), 25.0,
                  np.zeros(3), free)
    assert mk.solver is highs  # the same HiGHS model, updated
    assert np.allclose(c2.activated, [5, 20, 0, 0])
    assert c2.marginal_price == pytest.approx(50.0)
    # and back to a downward need
    c3 = mk.clear(bk.mw, bk.price, -7.0, np.zeros(3), free)
    assert mk.solver is highs
    assert np.allclose(c3.activated, [0, 0, 0, 7])
    assert c3.marginal_price == pytest.approx(-10.0)
    assert mk.n_cold_restarts == 0


def test_failed_warm_start_falls_back_to_a_cold_solve():
    bk = merit_book()
    mk = CentralizedMarket(bk, NO_NET, PEN, STEP_H)
    mk.clear(bk.mw, bk.price, 30.0, NO_FLOW, NO_LIMIT)
    highs = mk.solver
    check = mk.lp.checked
    calls = []

    def reject_first(status):  # as if HiGHS had returned "unknown" once
        calls.append(1)
        return None if len(calls) == 1 else check(status)

    mk.lp.checked = reject_first
    c = mk.clear(bk.mw, bk.price, 45.0, NO_FLOW, NO_LIMIT)
    assert mk.n_cold_restarts == 1 and mk.solver is highs
    assert np.allclose(c.activated, [20, 5, 20, 0])
    assert c.marginal_price == pytest.approx(80.0)


def test_ties_are_broken_by_slot_order_whatever_the_history():
    bk = book([("a", 1, 20, 50), ("b", 1, 20, 50), ("c", 1, 20, 50)])
    mk = CentralizedMarket(bk, NO_NET, PEN, STEP_H)
    c = mk.clear(bk.mw, bk.price, 30.0, NO_FLOW, NO_LIMIT)
    assert np.allclose(c.activated, [20, 10, 0])
    assert c.marginal_price == 50.0  # exact, despite the tie-breaking perturbation
    # a step where c is cheapest leaves c in the solver's warm-start basis ...
    c = mk.clear(bk.mw, np.array([50, 50, 40.0]), 10.0, NO_FLOW, NO_LIMIT)
    assert np.allclose(c.activated, [0, 0, 10])
    # ... and the tied step still gives the same answer
    c = mk.clear(bk.mw, bk.price, 30.0, NO_FLOW, NO_LIMIT)
    assert np.allclose(c.activated, [20, 10, 0])
    assert c.marginal_price == 50.0


def test_matches_independent_lp_on_random_instance():
    """Slot-level LP written directly for scipy's linprog (no bus aggregation, no branch
    filtering, no tie handling) must give the same cost and the same balance dual."""
    rng = np.random.default_rng(7)
    n_bus, n_branch, n = 12, 20, 60
    ptdf = rng.normal(0.0, 0.3, (n_branch, n_bus))
    ptdf[:, 0] = 0.0  # reference bus
    ptdf[-3:, :] = 0.0  # branches no slot can move
    t_bus = rng.integers(0, n_bus, n)
    direction = np.where(rng.random(n) < 0.5, 1, -1)
    bk = BidBook(resource=[f"r{i}" for i in range(n)], kind=["pv"] * n, grid=["T1"] * n,
                 level=["T"] * n, t_bus=t_bus, direction=direction, mw=np.zeros(n),
                 price=np.zeros(n))
    pen = Penalties(300.0, 200.0)
    mk = CentralizedMarket(bk, ptdf, pen, STEP_H)
    for _ in range(3):
        mw = rng.uniform(0, 10, n)
        price = rng.uniform(0, 100, n)
        need = rng.uniform(-80, 80)
        flow0 = rng.normal(0, 30, n_branch)
        limit = rng.uniform(10, 40, n_branch)
        c = mk.clear(mw, price, need, flow0, limit)

        # variables: x (n), short, long, up (L), dn (L)
        s = ptdf[:, t_bus] * direction
        nl = n_branch
        cost = np.r_[price, pen.imbalance_eur_per_mwh, pen.imbalance_eur_per_mwh,
                     np.full(2 * nl, pen.overload_eur_per_mwh)]
        a_eq = np.r_[direction, 1.0, -1.0, np.zeros(2 * nl)][None, :]
        eye, zero = np.eye(nl), np.zeros((nl, 2))
        a_ub = np.vstack([np.hstack([s, zero, -eye, np.zeros((nl, nl))]),  # flow - up <= lim
                          np.hstack([-s, zero, np.zeros((nl, nl)), -eye])])  # -flow - dn <= lim
        b_ub = np.r_[limit - flow0, limit + flow0]
        bounds = [(0, v) for v in mw] + [(0, None)] * (2 + 2 * nl)
        ref = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[need], bounds=bounds,
                      method="highs")
        assert ref.status == 0
        assert c.objective == pytest.approx(ref.fun * STEP_H, rel=1e-7, abs=1e-6)
        assert c.marginal_price == pytest.approx(ref.eqlin.marginals[0], rel=1e-6, abs=1e-6)
        flow = flow0 + s @ c.activated
        assert np.allclose(c.overload_mw, np.maximum(np.abs(flow) - limit, 0), atol=1e-6)
        assert c.unserved_mw == pytest.approx(need - direction @ c.activated, abs=1e-9)


def test_settlement_per_slot_buyers_prices_and_noise():
    bk = book([("a", 1, 20, 50), ("b", -1, 20, 30), ("c", 1, 20, 70)])

    class Result:  # any clearing with activated + marginal_price settles
        activated = np.array([12.0, 4.0, 1e-9])
        marginal_price = np.array([55.0, -35.0, 70.0])  # e.g. nodal, per slot

    acts = settle(bk, Result(), np.array(["TSO", "DSO:MV1", "TSO"]), "pay_as_clear", 0.5)
    assert [(a.resource, a.buyer, a.direction) for a in acts] == [("a", "TSO", 1),
                                                                 ("b", "DSO:MV1", -1)]
    assert [a.price for a in acts] == [55.0, 35.0]
    assert [a.cost for a in acts] == pytest.approx([12 * 55 * 0.5, 4 * 35 * 0.5])
    assert acts[1].level == "T" and acts[1].kind == "wind" and acts[1].grid == "T1"
    with pytest.raises(ValueError):
        settle(bk, Result(), "TSO", "pay_as_offer", 0.5)


def test_settled_records_equal_records_made_one_by_one():
    """`settle` makes its records with `Activation.many`: the same records as the frozen
    dataclass's own constructor (fields, types, equality, hash, repr), still frozen."""
    bk = book([("a", 1, 20, 50), ("b", -1, 20, 30), ("c", 1, 20, 70), ("d", -1, 5, 10)])

    class Result:
        activated = np.array([12.0, 4.0, 1e-9, 5.0])
        marginal_price = np.array([55.0, -35.0, 70.0, -12.5])

    acts = settle(bk, Result(), np.array(["TSO", "DSO:MV1", "TSO", "BRP:1"]), "pay_as_clear",
                  0.25)
    one_by_one = [Activation(a.resource, a.kind, a.grid, a.level, a.buyer, a.direction, a.mw,
                             a.price, a.price * a.mw * 0.25, a.bid_price) for a in acts]
    assert [a.resource for a in acts] == ["a", "b", "d"]
    assert [a.cost for a in acts] == [55.0 * 12.0 * 0.25, 35.0 * 4.0 * 0.25, 12.5 * 5.0 * 0.25]
    assert [a.bid_price for a in acts] == [50.0, 30.0, 10.0]
    assert acts == one_by_one
    assert [hash(a) for a in acts] == [hash(a) for a in one_by_one]
    assert [repr(a) for a in acts] == [repr(a) for a in one_by_one]
    assert [[type(getattr(a, f.name)) for f in fields(a)] for a in acts] == \
        [[type(getattr(a, f.name)) for f in fields(a)] for a in one_by_one]
    with pytest.raises(FrozenInstanceError):
        acts[0].mw = 1.0


def test_activation_many_takes_every_field_as_a_column():
    rows = [("r1", "wind", "T1", "T", "TSO", 1, 2.0, 50.0, 25.0, 40.0),
            ("r2", "load", "MV1", "D", "DSO:MV1", -1, 1.5, 30.0, 11.25, float("nan"))]
    made = Activation.many(*zip(*rows, strict=True))
    assert [repr(a) for a in made] == [repr(Activation(*r)) for r in rows]
    assert Activation.many(*([],) * 10) == []
    with pytest.raises(TypeError):  # the default bid price is not filled in
        Activation.many(*zip(*(r[:9] for r in rows), strict=True))
    with pytest.raises(ValueError):  # columns of different lengths
        Activation.many(["r1"], *([x] for x in rows[0][1:9]), [])


def test_bidbook_validation():
    with pytest.raises(ValueError):
        book([("a", 2, 20, 50)])
    with pytest.raises(ValueError):
        BidBook.from_rows([("a", "coal", "T1", "T", 0, 1, 1.0, 1.0)])
    bk = merit_book()
    assert len(bk) == 4
    assert bk.mask(direction=-1).tolist() == [False, False, False, True]
    bk.update(np.ones(4), np.full(4, 3.0))
    assert bk.mw.tolist() == [1.0] * 4 and bk.price.tolist() == [3.0] * 4
