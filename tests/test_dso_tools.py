"""The DSOs' own tools: on-load tap changers at the HV/MV interfaces, storage within its
energy limits, and the rebound of shifted demand."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest
from tsodso.core.assets import classify
from tsodso.core.powerflow import GridModel
from tsodso.scenarios.grids import interface_trafos
from tsodso.scenarios.load import parse
from tsodso.scenarios.split import split_net
from tsodso.scenarios.world import load_grid, prepare
from tsodso.simulators import storage
from tsodso.simulators.flexibility import Portfolio
from tsodso.simulators.taps import TapChangers, TapSettings

from tests.conftest import scenario_text


def test_tap_change_is_a_slack_voltage_scaling_on_a_simbench_mv_grid():
    """Moving an interface transformer's tap in pandapower gives the same MV voltages and
    exchange as scaling its HV slack by the ratio change (what the tap changers do)."""
    sc = parse(scenario_text(source="simbench", steps=1), "t")
    net, _ = load_grid(sc)
    split = split_net(net, interface_trafos(sc, net))
    d = split.d_net
    ifaces = [i for i in split.interfaces if i.grid == "MV1.101"]
    assert len(ifaces) == 2  # two parallel transformers, MV busbars coupled
    model = GridModel(copy.deepcopy(d))
    lookup = model.net._pd2ppc_lookups["bus"]
    slack = [int(np.flatnonzero(model.ref == lookup[i.hv_bus])[0]) for i in ifaces]
    taps = TapChangers(model, [(i.name, i.trafo, s) for i, s in zip(ifaces, slack, strict=True)],
                       TapSettings(1.02, 0.0001, 3))
    assert taps.sub.tolist() == [0, 0]  # one substation: the transformers move together
    taps.new_step()
    lv = int(d.trafo.lv_bus[ifaces[0].trafo])
    v_mv = model.solve(*model.base_injections()).vm_pu[model.net.bus.index.get_loc(lv)]
    assert taps.control(np.full(len(d.bus), 1.07))  # too high: taps go up (HV side)
    np.testing.assert_array_equal(taps.position() - d.trafo.tap_pos[[i.trafo for i in ifaces]],
                                  [3, 3])
    v_ref = model.v_ref.copy()
    v_ref[slack] *= taps.factor()
    res = model.solve(*model.base_injections(), v_ref=v_ref)
    ref = copy.deepcopy(d)
    ref.trafo.loc[[i.trafo for i in ifaces], "tap_pos"] = taps.position()
    pp.runpp(ref, numba=False)
    hv = {i.hv_bus for i in ifaces}
    buses = [b for b in ref.bus.index if b in set(split.d_buses["MV1.101"]) and b not in hv]
    pos = model.net.bus.index.get_indexer(buses)
    np.testing.assert_allclose(res.vm_pu[pos], ref.res_bus.vm_pu.loc[buses], atol=1e-6)
    for i in ifaces:
        b = len(d.line) + d.trafo.index.get_loc(i.trafo)
        assert res.p_from_mw[b] == pytest.approx(ref.res_trafo.p_hv_mw[i.trafo], abs=1e-5)
        assert res.q_from_mvar[b] == pytest.approx(ref.res_trafo.q_hv_mvar[i.trafo], abs=1e-5)
    # three taps of 1.5 % lower the MV busbar by about 4.5 %
    assert ref.res_bus.vm_pu[lv] == pytest.approx(v_mv * (1 + 0.075) / (1 + 0.12), rel=0.01)


def test_tap_changers_hold_the_mv_busbar_in_the_deadband(tmp_path):
    """Without a market (scheme none) the recorded state is the tap-controlled one: every MV
    busbar is within the (hunting-guarded) deadband of the target whenever taps remain."""
    import h5py

    from tsodso.runner import run

    sc = parse(scenario_text(source="simbench", steps=24, start="2016-05-30T10:00:00",
                             extra="[control]\nmax_tap_moves = 4\n"), "t")
    out = tmp_path / "taps.h5"
    run(sc, "none", out)
    with h5py.File(out) as f:
        tap = f["interfaces/tap_pos"][:]
        grids = [g.decode() for g in f["interfaces/grid"][:]]
        busbar = [[b.decode() for b in f[f"grids/{g}/bus"][:]].index(
            next(b.decode() for b in f[f"grids/{g}/bus"][:]
                 if b.decode().endswith(("busbar1.1", "node1")))) for g in grids]
        vm = np.column_stack([f[f"grids/{g}/vm_pu"][:, j] for g, j in zip(grids, busbar,
                                                                             strict=True)])
    assert np.abs(np.diff(tap, axis=0)).sum() >= 5  # taps moved during the day
    target, band = sc.grid.mv_busbar_pu, sc.control.tap_deadband_pu  # 1.00 +- 0.01
    inside = np.abs(vm - target) <= band + 1e-9
    at_limit = (tap <= -9) | (tap >= 9)
    assert np.all(inside | at_limit)
    # a file of format 2 (no tap positions) stays readable
    from tsodso.results.api import Run
    from tsodso.results.read import read_interfaces

    with h5py.File(out) as f:
        np.testing.assert_array_equal(read_interfaces(f, 24).tap_pos, tap)
    with h5py.File(out, "r+") as f:
        del f["interfaces/tap_pos"]
        f.attrs["format_version"] = 2
    with h5py.File(out) as f:
        assert read_interfaces(f, 24).tap_pos is None
    assert "tap_pos" not in Run(out).interfaces and "p_mw" in Run(out).interfaces


def test_storage_stays_within_its_energy_limits_over_a_week_of_tiny(monkeypatch, tmp_path):
    """Every activation the markets choose, with the schedule and the efficiency, keeps the
    state of charge within [e_min, e_max] (checked before the portfolio's own clipping)."""
    from tsodso.runner import run

    seen = {"steps": 0, "moved": 0.0, "full": 0.0}
    activate = Portfolio.activate

    def checked(self, k, activated):
        before = {n: s.copy() for n, s in self.soc.items()}
        out = activate(self, k, activated)
        for name, g in self.grids.items():
            if not len(g.sto_e0):
                continue
            p = g.fc_sto[k] + out[name].dp_sto
            after = before[name] + storage.energy_change(p, self.step_h, self.eta[name])
            assert np.all(after >= g.sto_e_min - 1e-9) and np.all(after <= g.sto_e_max + 1e-9)
            assert np.all(np.abs(p) <= g.sto_rating + 1e-9)
            seen["moved"] += float(np.abs(out[name].dp_sto).sum())
            seen["full"] = max(seen["full"], float((after / g.sto_e_max).max()))
        seen["steps"] += 1
        return out

    monkeypatch.setattr(Portfolio, "activate", checked)
    sc = parse(scenario_text(steps=7 * 96, start="2016-06-13T00:00:00"), "t")
    run(sc, "local", tmp_path / "week.h5")
    assert seen["steps"] == 7 * 96
    assert seen["moved"] > 0.0  # the markets and the schedule cut did move the storage
    assert seen["full"] > 0.5  # storage was charged well above empty


def test_storage_prices_follow_the_state_of_charge():
    up_empty, down_empty = storage.price_factors(np.array(0.0))
    up_half, down_half = storage.price_factors(np.array(0.5))
    up_full, down_full = storage.price_factors(np.array(1.0))
    assert (up_half, down_half) == (1.0, 1.0)
    assert up_empty > up_half > up_full and down_empty < down_half < down_full
    # efficiency: 1 MW discharged for 1 h takes 1/sqrt(0.81) = 1.111 MWh out of the unit
    assert storage.energy_change(np.array(-1.0), 1.0, storage.one_way(np.array(0.81))) == \
        pytest.approx(-1 / 0.9)


def test_simbench_storage_rated_from_sn_mva_and_heat_pumps_classified():
    sc = parse(scenario_text(source="simbench", steps=2), "t")
    ctx = prepare(sc, "none")
    sto = ctx.portfolio.book.kind == "storage"
    assert ctx.portfolio.book.mw[sto].sum() == 0.0  # not offered before the first step
    book = ctx.portfolio.offer(0)
    # SimBench storage starts empty (soc_percent 0): it can only charge (down)
    assert book.mw[sto & (book.direction < 0)].sum() > 100.0
    assert book.mw[sto & (book.direction > 0)].sum() == 0.0
    kinds = classify("load", ["Air_Parallel_1", "Soil_Alternative_2", "lv_rural1", "G0-A"])
    assert kinds.tolist() == ["heat_pump", "heat_pump", "load", "load"]
    assert (ctx.portfolio.book.kind == "heat_pump").any()


def test_rebound_pays_the_shifted_energy_back_within_the_window():
    """A load reduction in one step is consumed again over the next payback_steps steps:
    the energy balance closes to 1e-6 MWh and nothing is paid back after the window."""
    sc = parse(scenario_text(steps=12), "t")
    ctx = prepare(sc, "none")
    p = ctx.portfolio
    n = sc.flexibility.load.payback_steps
    assert n > 0
    book = p.offer(2)
    slot = int(np.flatnonzero((book.kind == "load") & (book.direction > 0) & (book.mw > 0))[0])
    grid = str(book.grid[slot])
    act = np.zeros(len(book))
    act[slot] = book.mw[slot]
    sp = p.activate(2, act)[grid]
    shifted = sp.dp_load.sum() * p.step_h  # MWh, negative: consumed less
    assert shifted == pytest.approx(-book.mw[slot] * p.step_h)
    paid = 0.0
    for k in range(3, 12):
        p.offer(k)
        sp_k = p.activate(k, np.zeros(len(book)))[grid]
        neutral = p.neutral()[grid]
        np.testing.assert_allclose(sp_k.dp_load, neutral.dp_load)  # no activation: payback only
        if k > 2 + n:
            assert np.abs(sp_k.dp_load).max() < 1e-12
        paid += sp_k.dp_load.sum() * p.step_h
        assert sp_k.schedule_mw == pytest.approx(-sp_k.dp_load.sum())  # part of the imbalance
    assert paid + shifted == pytest.approx(0.0, abs=1e-6)
