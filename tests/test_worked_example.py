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

# scheme -> {(resource, buyer): (MW, EUR)} with pay-as-bid, step 0.25 h
EXPECTED = {
    "none": {},
    "centralized": {("D1:storage:up", "TSO"): (8.0, 100.0)},
    "local": {("D1:storage:down", "DSO:D1"): (5.0, 18.75),
              ("T:ladder:up", "TSO"): (13.0, 195.0)},
    "shared_balancing": {("D1:storage:down", "DSO:D1"): (5.0, 18.75),
                         ("T:ladder:up", "TSO"): (13.0, 195.0)},
    "common": {("D1:storage:down", "DSO:D1"): (5.0, 18.75),
               ("T:ladder:up", "TSO"): (13.0, 195.0)},
    # no balance responsible parties in the example: the integrated market is the common one
    "integrated": {("D1:storage:down", "DSO:D1"): (5.0, 18.75),
                   ("T:ladder:up", "TSO"): (13.0, 195.0)},
}


@pytest.mark.parametrize("scheme", sorted(EXPECTED))
def test_worked_example(scheme):
    sch = _scheme(scheme)
    out = sch.clear(NEEDS, REPORTS)
    got = {(a.resource, a.buyer): (round(a.mw, 6), round(a.cost, 6)) for a in out.activations}
    assert got == EXPECTED[scheme]
    assert out.unserved_mw == pytest.approx(0.0 if scheme != "none" else 8.0, abs=1e-6)
    # D1's voltage after the market on the linear model
    signed = sch.book.direction * out.activated
    dv, _ = sch.setup.distribution.effect("D1", signed)
    expected_v = {"none": 1.11, "centralized": 1.126}.get(scheme, 1.10)
    assert 1.11 + dv[0] == pytest.approx(expected_v, abs=1e-9)


def test_pay_as_clear_centralized_price():
    sch = _scheme("centralized")
    sch.pricing = "pay_as_clear"
    out = sch.clear(NEEDS, REPORTS)
    (act,) = out.activations
    assert act.price == pytest.approx(50.0)  # the marginal up offer sets the price
    assert act.cost == pytest.approx(8.0 * 50.0 * 0.25)
