"""The worked example of docs/schemes.md, computed by hand, against the real scheme classes.

One T bus with a balancing ladder, one D grid `D1` with one monitored bus at 1.11 pu (limit
1.10 pu; every D resource moves it by 0.002 pu per MW injected), the system short by 8 MW
(the T side short by 13 MW, D1 long by 5 MW), 15-minute step.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from tsodso.coordination.bid import BidBook
from tsodso.coordination.dgrids import DGridView, DModel
from tsodso.coordination.dnetwork import DSensitivity
from tsodso.coordination.need import GridLimits, Needs
from tsodso.coordination.ptdf import TransmissionModel
from tsodso.coordination.schemes import MarketSetup, make_scheme
from tsodso.scenarios.load import parse

ROWS = [  # resource, kind, grid, level, t_bus, direction, mw, price
    ("T:ladder:up", "balancing", "T", "T", 0, 1, 100.0, 60.0),
    ("T:ladder:down", "balancing", "T", "T", 0, -1, 100.0, 20.0),
    ("D1:pv:down", "pv", "D1", "D", 1, -1, 10.0, 40.0),
    ("D1:storage:up", "storage", "D1", "D", 1, 1, 10.0, 50.0),
    ("D1:storage:down", "storage", "D1", "D", 1, -1, 10.0, 15.0),
]


def _setup() -> MarketSetup:
    book = BidBook.from_rows(ROWS)
    sens = DSensitivity(bus=np.array([0]), branch=np.array([0]), dv_dp=np.array([[0.002]]),
                        dl_dp=np.array([[0.0]]), inj_bus=np.array([7]))
    scenario = parse('name = "worked example"\n[market]\nvoltage_margin_pu = 0.0\n'
                     'loading_margin_percent = 0.0\n', "example")
    dmodel = DModel(sens=sens, inj_col={7: 0}, zone=np.array([-1, -1, 0, 0, 0]),
                    capability=book.mw.copy())
    view = DGridView(book=book, slot_bus=np.array([-1, -1, 7, 7, 7]), model=dmodel,
                     grids=("D1",), bus={"D1": np.array([0])}, branch={"D1": np.array([0])},
                     limits={"D1": GridLimits(0.9, 1.10, 100.0, np.array([10.0]))})
    return MarketSetup(
        book=book, step_h=0.25, t_name="T",
        transmission=TransmissionModel(ptdf=np.zeros((1, 2)), rows_of_report=np.array([0]),
                                       limit_mw=np.array([1000.0])),
        distribution=view, penalties=scenario.penalties, market=scenario.market)


def _scheme(name: str):
    return make_scheme(name, _setup())


REPORTS = {"T": SimpleNamespace(p_from_mw=np.array([0.0])),
           "D1": SimpleNamespace(vm_pu=np.array([1.11]), loading_percent=np.array([50.0]))}
NEEDS = Needs(step=0, imbalance_mw=-8.0, area_imbalance={"T": -13.0, "D1": 5.0})

# scheme -> ({resource: MW activated}, {buyer: EUR paid}) with pay-as-bid, step 0.25 h
EXPECTED = {
    "none": ({}, {}),
    "centralized": ({"D1:storage:up": 8.0}, {"TSO": 100.0}),
    "local": ({"D1:storage:down": 5.0, "T:ladder:up": 13.0}, {"DSO:D1": 18.75, "TSO": 195.0}),
    "shared_balancing": ({"D1:storage:down": 5.0, "T:ladder:up": 13.0},
                         {"DSO:D1": 18.75, "TSO": 195.0}),
    # cost causation from the duals: balance price 60 (the ladder), voltage row worth
    # 15 + 60 = 75 EUR/MWh to the storage's downward MW. The TSO's rows are worth
    # 13 x 60 - 5 x 60 = 480 EUR/h to the dispatch, D1's 5 x 75 = 375 EUR/h: the DSO causes its
    # 5 MW down and the 5 MW of ladder that replace them. Pay-as-bid total 213.75 EUR split
    # 480 : 375 -> TSO 120.00, DSO 93.75.
    "common": ({"D1:storage:down": 5.0, "T:ladder:up": 13.0}, {"TSO": 120.0, "DSO:D1": 93.75}),
    # no balance responsible parties in the example: the integrated market is the common one
    "integrated": ({"D1:storage:down": 5.0, "T:ladder:up": 13.0},
                   {"TSO": 120.0, "DSO:D1": 93.75}),
}


@pytest.mark.parametrize("scheme", sorted(EXPECTED))
def test_worked_example(scheme):
    sch = _scheme(scheme)
    out = sch.clear(NEEDS, REPORTS)
    mw: dict[str, float] = {}
    paid: dict[str, float] = {}
    for a in out.activations:
        mw[a.resource] = mw.get(a.resource, 0.0) + a.mw
        paid[a.buyer] = paid.get(a.buyer, 0.0) + a.cost
    want_mw, want_paid = EXPECTED[scheme]
    assert {r: round(v, 6) for r, v in mw.items()} == want_mw
    assert {b: round(v, 3) for b, v in paid.items()} == want_paid  # ties: 1e-5 EUR/MWh
    assert out.unserved_mw == pytest.approx(0.0 if scheme != "none" else 8.0, abs=1e-6)
    # D1's voltage after the market on the linear model
    signed = sch.book.direction * out.activated
    dv, _ = sch.setup.distribution.effect("D1", signed)
    expected_v = {"none": 1.11, "centralized": 1.126}.get(scheme, 1.10)
    assert 1.11 + dv[0] == pytest.approx(expected_v, abs=1e-9)


def test_tso_pays_for_what_its_balance_needed_even_if_it_also_helps_a_dso():
    """The storage covers the TSO's whole 10 MW need and relieves D1's undervoltage, which
    needs only 6 MW: the voltage row does not bind, so its dual is 0 and the TSO pays all."""
    sch = _scheme("common")
    reports = {"T": REPORTS["T"], "D1": SimpleNamespace(vm_pu=np.array([0.888]),
                                                        loading_percent=np.array([50.0]))}
    out = sch.clear(Needs(step=0, imbalance_mw=-10.0, area_imbalance={"T": -10.0}), reports)
    paid = {a.buyer: a.cost for a in out.activations}
    assert {a.resource for a in out.activations} == {"D1:storage:up"}
    assert paid == {"TSO": pytest.approx(10 * 50.0 * 0.25)}


def test_dso_pays_for_its_need_and_the_counter_trade_it_causes():
    """D1 is 0.01 pu too high and the system balanced: 5 MW of storage down fix D1, and 5 MW
    of ladder up restore the balance. Both are D1's (balance row worth 0 to the dispatch)."""
    sch = _scheme("common")
    out = sch.clear(Needs(step=0, imbalance_mw=0.0, area_imbalance={"T": 0.0}), REPORTS)
    paid: dict[str, float] = {}
    for a in out.activations:
        paid[a.buyer] = paid.get(a.buyer, 0.0) + a.cost
    assert paid == {"DSO:D1": pytest.approx((5 * 15.0 + 5 * 60.0) * 0.25)}


def test_pay_as_clear_centralized_price():
    sch = _scheme("centralized")
    sch.pricing = "pay_as_clear"
    out = sch.clear(NEEDS, REPORTS)
    (act,) = out.activations
    assert act.price == pytest.approx(50.0)  # the marginal up offer sets the price
    assert act.cost == pytest.approx(8.0 * 50.0 * 0.25)
