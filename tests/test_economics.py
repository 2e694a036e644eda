"""Economics of the schemes on hand-computed cases (prices, scarcity, congestion, settlement)
and the conflict rules against the no-coordination counterfactual."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from tsodso.coordination.bid import BidBook
from tsodso.coordination.dgrids import DGridView, DModel
from tsodso.coordination.dnetwork import DSensitivity
from tsodso.coordination.need import GridLimits, Needs
from tsodso.coordination.ptdf import TransmissionModel
from tsodso.coordination.schemes import MarketSetup, make_scheme
from tsodso.scenarios.load import ScenarioError, parse

from tests.conftest import make_scenario
from tsodso.runner import run


def _setup(rows, ptdf, limit, pricing="pay_as_bid", brp=None) -> MarketSetup:
    """Two T buses (columns 0, 1) and one D grid `D1` whose one bus no offer moves."""
    book = BidBook.from_rows(rows)
    n = len(book)
    sens = DSensitivity(bus=np.array([0]), branch=np.array([0]), dv_dp=np.zeros((1, 1)),
                        dl_dp=np.zeros((1, 1)), inj_bus=np.array([7]))
    sc = parse(f'name = "hand"\n[market]\npricing = "{pricing}"\nvoltage_margin_pu = 0.0\n'
               'loading_margin_percent = 0.0\n', "hand")
    slot_bus = np.array([7 if lv == "D" else -1 for lv in book.level])
    view = DGridView(book=book, slot_bus=slot_bus,
                     model=DModel(sens=sens, inj_col={7: 0}, zone=np.where(
                         book.level == "D", 0, -1), capability=np.full(n, 10.0)),
                     grids=("D1",), bus={"D1": np.array([0])}, branch={"D1": np.array([0])},
                     limits={"D1": GridLimits(0.9, 1.1, 100.0, np.array([10.0]))})
    return MarketSetup(book=book, step_h=0.25, t_name="T",
                       transmission=TransmissionModel(ptdf=np.asarray(ptdf, float),
                                                      rows_of_report=np.array([0]),
                                                      limit_mw=np.asarray(limit, float)),
                       distribution=view, penalties=sc.penalties, market=sc.market,
                       brp_imbalance=brp or {})


REPORTS = {"T": SimpleNamespace(p_from_mw=np.array([0.0])),
           "D1": SimpleNamespace(vm_pu=np.array([1.0]), loading_percent=np.array([10.0]))}


def _clear(scheme, setup, need_mw, area=None):
    sch = make_scheme(scheme, setup)
    return sch, sch.clear(Needs(step=0, imbalance_mw=-need_mw,
                                area_imbalance=area or {"T": -need_mw}), REPORTS)


def test_nodal_prices_and_congestion_part_on_two_buses():
    """Need 10 MW up at bus 1; a cheap offer at bus 0 (20 EUR) behind a branch limited to 5 MW,
    a dear one at bus 1 (50 EUR). Dispatch 5 + 5; pay-as-clear pays 20 at bus 0 and 50 at
    bus 1 (nodal prices from the duals); the congestion part of the payments is
    5 MW x (20 - 50) x 0.25 h = -37.5 EUR: the branch's scarcity lowers what bus 0 is paid."""
    rows = [("cheap:up", "storage", "T", "T", 0, 1, 10.0, 20.0),
            ("dear:up", "storage", "T", "T", 1, 1, 10.0, 50.0)]
    # PTDF of the branch 0 -> 1 for injections at bus 0 (bus 1 is the reference)
    setup = _setup(rows, [[1.0, 0.0]], [5.0], pricing="pay_as_clear")
    _, out = _clear("centralized", setup, 10.0)
    got = {a.resource: (round(a.mw, 6), round(a.price, 4)) for a in out.activations}
    assert got == {"cheap:up": (5.0, 20.0), "dear:up": (5.0, 50.0)}
    assert out.transfers["congestion_rent"] == pytest.approx(5 * (20 - 50) * 0.25, abs=1e-3)
    assert out.unserved_mw == pytest.approx(0.0, abs=1e-9)


def test_scarcity_price_not_the_penalty():
    """The system needs 30 MW up and 20 MW are offered: the balance slack binds, its dual is
    the imbalance value (15,000 EUR/MWh). Pay-as-clear pays the scarcity price instead: the
    highest upward price offered (70 EUR/MWh), to both offers."""
    rows = [("a:up", "storage", "T", "T", 0, 1, 10.0, 40.0),
            ("b:up", "storage", "T", "T", 0, 1, 10.0, 70.0),
            ("c:down", "storage", "T", "T", 0, -1, 10.0, 10.0)]
    setup = _setup(rows, [[0.0, 0.0]], [100.0], pricing="pay_as_clear")
    _, out = _clear("centralized", setup, 30.0)
    assert out.unserved_mw == pytest.approx(10.0)
    assert {a.resource: a.price for a in out.activations} == {"a:up": 70.0, "b:up": 70.0}
    assert sum(a.cost for a in out.activations) == pytest.approx(20 * 70.0 * 0.25)


def test_unserved_imbalance_only_when_offers_run_out_even_if_a_branch_overloads():
    """Balance before thermal loading: the only upward offer sits behind a branch already at
    its limit. The market still balances (and pays the overload's value), because the value of
    unserved imbalance is above every congestion value."""
    rows = [("behind:up", "storage", "T", "T", 0, 1, 10.0, 30.0)]
    setup = _setup(rows, [[1.0, 0.0]], [0.0])
    _, out = _clear("centralized", setup, 10.0)
    assert out.unserved_mw == pytest.approx(0.0, abs=1e-9)
    assert [a.mw for a in out.activations] == [pytest.approx(10.0)]
    with pytest.raises(ScenarioError, match="must exceed overload"):
        parse('name = "x"\n[penalties]\nimbalance_eur_per_mwh = 100.0\n'
              'overload_eur_per_mwh = 200.0\n', "x")


def test_shared_balancing_settles_the_dsos_residual_with_the_tso():
    """D1 is 8 MW short and offers only 3 MW up: the DSO buys its 3 MW, the TSO balances the
    other 5 MW with its ladder (60 EUR/MWh, the marginal price) and charges D1 the imbalance
    price for them: 5 MW x 60 x 0.25 h = 75 EUR. Nothing stays unserved."""
    rows = [("T:ladder:up", "balancing", "T", "T", 0, 1, 100.0, 60.0),
            ("D1:load:up", "load", "D1", "D", 0, 1, 3.0, 45.0)]
    setup = _setup(rows, [[0.0, 0.0]], [100.0])
    sch, out = _clear("shared_balancing", setup, 8.0, area={"T": 0.0, "D1": -8.0})
    paid = {(a.resource, a.buyer): round(a.mw, 6) for a in out.activations}
    assert paid == {("D1:load:up", "DSO:D1"): 3.0, ("T:ladder:up", "TSO"): 5.0}
    assert out.unserved_mw == pytest.approx(0.0, abs=1e-9)
    assert out.transfers["dso_imbalance_charges"] == pytest.approx(5 * 60.0 * 0.25)
    assert sch.dso_balances_area


def test_integrated_brps_trade_their_own_positions_in_opposite_directions():
    """BRP:res is 4 MW short, BRP:load 4 MW long: the system is balanced, yet each BRP buys
    against its own position (offers below its expected imbalance price of 150): 4 MW up and
    4 MW down. The joint market then has nothing left to do. The common market on the same
    step buys nothing."""
    rows = [("a:up", "storage", "T", "T", 0, 1, 10.0, 30.0),
            ("b:down", "storage", "T", "T", 0, -1, 10.0, 10.0)]
    brp = {"BRP:res": np.array([-4.0]), "BRP:load": np.array([4.0])}
    setup = _setup(rows, [[0.0, 0.0]], [100.0], brp=brp)
    _, common = _clear("common", setup, 0.0)
    assert common.activations == []
    _, out = _clear("integrated", setup, 0.0)
    bought = {(a.resource, a.buyer): round(a.mw, 6) for a in out.activations}
    assert bought == {("a:up", "BRP:res"): 4.0, ("b:down", "BRP:load"): 4.0}
    assert out.unserved_mw == pytest.approx(0.0, abs=1e-9)
    assert out.transfers["brp_imbalance_charges"] == pytest.approx(0.0, abs=1e-9)


# Without the balancing ladder and storage the TSO balances with D resources. MV1.101 peaks at
# 1.002949 pu without coordination and 1.003137 pu with the centralized market at step 1
# (10:15): a band edge between them
EDGE_D = ("[limits.D]\nvm_max_pu = 1.00304\n[flexibility.balancing]\nblocks = 0\n"
          "[flexibility.storage]\nshare = 0.0\n")


def test_tso_caused_violations_against_the_none_run(tmp_path):
    """Centralized ignores the D grids. Every recorded `tso_causes_dso_violation` is a (grid,
    step) with a D violation after the market (AC), in a grid where the TSO activated D
    resources, and the AC counterfactual finds it: on this tight-limit day some occur."""
    sc = make_scenario(steps=8, extra=EDGE_D)
    run(sc, "none", tmp_path / "none.h5")
    run(sc, "centralized", tmp_path / "c.h5")

    def violated(path):
        out = {}
        with h5py.File(path) as f:
            for g in f["grids"]:
                grp = f["grids"][g]
                if grp.attrs["level"] != "D":
                    continue
                vm = grp["vm_pu"][:]
                ld = grp["branch_loading_percent"][:]
                bad = ((vm > grp.attrs["vm_max_pu"]) | (vm < grp.attrs["vm_min_pu"])).any(1) \
                    | (ld > grp.attrs["loading_max_percent"]).any(1)
                out[g] = bad
        return out

    after = violated(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5") as f:
        kinds = f["conflicts/kind"].asstr()[:]
        grids = f["conflicts/grid"].asstr()[:]
        steps = f["conflicts/step"][:]
        tso_d = {(g, int(k)) for g, k, b, lv in zip(
            f["activations/grid"].asstr()[:], f["activations/step"][:],
            f["activations/buyer"].asstr()[:], f["activations/level"].asstr()[:], strict=True)
            if b == "TSO" and lv == "D"}
    recorded = {(g, int(k)) for kind, g, k in zip(kinds, grids, steps, strict=True)
                if kind == "tso_causes_dso_violation"}
    assert recorded, "the TSO's D activations should push MV1.101 over the band edge"
    for g, k in recorded:
        assert after[g][k] and (g, k) in tso_d
    base = violated(tmp_path / "none.h5")
    new = {(g, k) for g in after for k in np.flatnonzero(after[g] & ~base[g])} & tso_d
    assert recorded <= new | {(g, k) for g, k in recorded if base[g][k]}


def test_tso_setpoint_control_brings_t_voltages_back_before_any_market(tmp_path):
    """With a T band edge below tiny's HV voltages, the TSO lowers the EHV set-point each step
    (no market involved): T buses end inside the band less the margin (to the accuracy of one
    correction); without the control they stay above and count as unserved T voltage."""
    edge = "[limits.T]\nvm_max_pu = 1.006\n"
    on = run(make_scenario(steps=4, extra=edge), "none", tmp_path / "on.h5")
    off = run(make_scenario(steps=4, extra=edge + "[control]\ntso_setpoint = false\n"), "none",
              tmp_path / "off.h5")
    with h5py.File(tmp_path / "on.h5") as f:
        vm_on = f["grids/HV1/vm_pu"][:]
    with h5py.File(tmp_path / "off.h5") as f:
        vm_off = f["grids/HV1/vm_pu"][:]
    assert vm_off.max() > 1.007
    assert vm_on.max() <= 1.006 - 0.002 + 2e-4
    assert off["unserved_voltage_t_puh"] > 0 and on["unserved_voltage_t_puh"] == 0


def test_brps_do_not_redispatch_the_grid_and_every_mw_has_a_buyer():
    """A branch is already 5 MW over its limit. The BRPs' trading may not relieve it for free
    (that is the operators' job, paid by them): every activated MW is settled with a buyer,
    the joint market redispatches and the TSO pays for it."""
    rows = [("a:up", "storage", "T", "T", 0, 1, 10.0, 30.0),
            ("b:down", "storage", "T", "T", 0, -1, 10.0, 10.0),
            ("wind:down", "wind", "T", "T", 0, -1, 20.0, 35.0),
            ("ladder:up", "balancing", "T", "T", 1, 1, 100.0, 60.0)]
    brp = {"BRP:res": np.array([-4.0]), "BRP:load": np.array([4.0])}
    setup = _setup(rows, [[1.0, 0.0]], [5.0], brp=brp)
    sch = make_scheme("integrated", setup)
    reports = {"T": SimpleNamespace(p_from_mw=np.array([10.0])), "D1": REPORTS["D1"]}
    out = sch.clear(Needs(step=0, imbalance_mw=0.0, area_imbalance={"T": 0.0}), reports)
    d = sch.book.direction
    settled = np.zeros(len(d))
    for a in out.activations:
        settled[list(sch.book.resource).index(a.resource)] += a.mw
    np.testing.assert_allclose(settled, out.activated, atol=1e-6)
    assert out.unserved_mw == pytest.approx(0.0, abs=1e-6)
    redispatch = {a.resource: a.buyer for a in out.activations if a.resource in
                  ("wind:down", "ladder:up")}
    assert redispatch and set(redispatch.values()) == {"TSO"}
