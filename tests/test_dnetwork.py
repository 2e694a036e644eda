"""The D grids' linear model agrees with the AC power flow and with hand-computed physics."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
import scipy.sparse as sp
from tsodso.coordination.dnetwork import sensitivities
from tsodso.core.powerflow import GridModel
from tsodso.scenarios.split import split_net
from tsodso.scenarios.tiny import build_tiny

MV1_FEEDER = [9, 10, 11, 12, 13, 14]  # tiny D net: MV1.101 Bus 1..6 (bus 8 is its busbar)
MV2_FEEDER = [17, 18, 19, 20, 21, 22, 23]
MV1_SLACK, MV2_SLACK = 7, 15  # the interfaces' HV buses


def _tiny_d_net():
    net, _ = build_tiny()
    return split_net(net).d_net


def _with_probes(net, buses):
    """Add a zero sgen at each bus: a handle to inject active power there through solve()."""
    first = len(net.sgen)
    for b in buses:
        pp.create_sgen(net, b, p_mw=0.0, q_mvar=0.0, name=f"probe {b}")
    return np.arange(first, first + len(buses))


def _central_differences(model, base, probes, h=0.05):
    """(d|V|/dP, dloading/dP) per probe from AC solves at +-h MW (error O(h^2))."""
    dv, dl = [], []
    for k in probes:
        res = []
        for sign in (1.0, -1.0):
            p = [a.copy() for a in base]
            p[2][k] += sign * h
            res.append(model.solve(*p))
        dv.append((res[0].vm_pu - res[1].vm_pu) / (2 * h))
        dl.append((res[0].loading_percent - res[1].loading_percent) / (2 * h))
    return np.array(dv).T, np.array(dl).T


def _assert_columns_close(a, b, rel):
    """Each column agrees within `rel` of that column's largest entry."""
    scale = np.abs(b).max(axis=0, keepdims=True)
    assert np.all(np.abs(a - b) <= rel * scale), np.max(np.abs(a - b) / scale)


@pytest.mark.parametrize("case", ["tiny_d", "mv_oberrhein"])
def test_matches_finite_differences(case):
    if case == "tiny_d":
        net = _tiny_d_net()
        buses = [10, 14, 17, 20, 23]  # both islands, near and far ends of the feeders
    else:
        net = pn.mv_oberrhein()
        buses = [int(b) for b in net.load.bus.to_numpy()[[0, 40, 90, 140]]]
    probes = _with_probes(net, buses)
    model = GridModel(net)
    base = [a.copy() for a in model.base_injections()]
    res = model.solve(*base)
    sens = sensitivities(model, res, np.array(buses))
    fd_v, fd_l = _central_differences(model, base, probes)
    assert np.all(np.abs(sens.dv_dp).max(axis=0) > 1e-4)  # every probe moves voltages
    _assert_columns_close(sens.dv_dp, fd_v, 1e-3)
    _assert_columns_close(sens.dl_dp, fd_l, 1e-3)


def test_no_load_voltage_rise_is_path_resistance():
    """With no flows, +1 MW at constant Q lifts |V| by R*P (pu): the resistance of the path
    from the slack; buses upstream of the injection rise by the resistance they share."""
    net = _tiny_d_net()
    model = GridModel(net)
    res = model.solve(*[np.zeros_like(a) for a in model.base_injections()])
    sens = sensitivities(model, res, np.array([MV1_FEEDER[0], MV1_FEEDER[-1]]))
    base_mva = net.sn_mva
    tr = net.trafo[net.trafo.hv_bus == MV1_SLACK].iloc[0]
    r_trafo = tr.vkr_percent / 100.0 * base_mva / tr.sn_mva
    lines = net.line[net.line.name.str.startswith("MV1.101")].sort_values("from_bus")
    r_lines = (lines.r_ohm_per_km * lines.length_km / lines.parallel).to_numpy() \
        / (20.0 ** 2 / base_mva)
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    start, far = pos[MV1_FEEDER[0]], pos[MV1_FEEDER[-1]]
    assert sens.dv_dp[far, 1] == pytest.approx(r_trafo + r_lines.sum(), rel=0.02)
    assert sens.dv_dp[start, 1] == pytest.approx(r_trafo + r_lines[0], rel=0.02)
    assert sens.dv_dp[start, 0] == pytest.approx(r_trafo + r_lines[0], rel=0.02)


def test_far_end_injection_raises_voltage_more():
    net = _tiny_d_net()
    model = GridModel(net)
    res = model.solve(*model.base_injections())
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    for feeder in (MV1_FEEDER, MV2_FEEDER):
        sens = sensitivities(model, res, np.array([feeder[0], feeder[-1]]))
        own = sens.dv_dp[[pos[feeder[0]], pos[feeder[-1]]], [0, 1]]
        assert 0 < own[0] < own[1]
        # the far end itself rises more when the MW comes in at the far end
        assert sens.dv_dp[pos[feeder[-1]], 1] > sens.dv_dp[pos[feeder[-1]], 0] > 0


def test_islands_slacks_and_monitored_subsets():
    net = _tiny_d_net()
    model = GridModel(net)
    res = model.solve(*model.base_injections())
    inj = np.array([12, 20, MV1_SLACK])
    full = sensitivities(model, res, inj)
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    mv2_rows = [pos[b] for b in [MV2_SLACK, 16, *MV2_FEEDER]]
    mv1_rows = [pos[b] for b in [MV1_SLACK, 8, *MV1_FEEDER]]
    assert np.all(full.dv_dp[mv2_rows, 0] == 0) and np.all(full.dv_dp[mv1_rows, 1] == 0)
    assert np.all(full.dv_dp[[pos[MV1_SLACK], pos[MV2_SLACK]]] == 0)
    assert np.all(full.dv_dp[:, 2] == 0) and np.all(full.dl_dp[:, 2] == 0)
    # an injection in MV1 changes the MV1 trafo's loading but not the MV2 lines
    names = model.branch_names
    mv2_branches = [i for i, n in enumerate(names) if "MV2.101" in n]
    assert np.all(full.dl_dp[mv2_branches, 0] == 0)
    assert full.dl_dp[names.index("HV1-MV1.101-Trafo1"), 0] != 0
    bus_pos, branch_pos = np.array(mv1_rows[2:]), np.array([0, 3, 13])
    sub = sensitivities(model, res, inj, bus_pos=bus_pos, branch_pos=branch_pos)
    np.testing.assert_allclose(sub.dv_dp, full.dv_dp[bus_pos], rtol=1e-12, atol=0)
    np.testing.assert_allclose(sub.dl_dp, full.dl_dp[branch_pos], rtol=1e-12, atol=0)


def test_stale_operating_point_is_refused():
    net = _tiny_d_net()
    model = GridModel(net)
    base = model.base_injections()
    res = model.solve(*base)
    model.solve(*[a * 0.5 for a in base])
    with pytest.raises(ValueError, match="operating point"):
        sensitivities(model, res, np.array([14]))


def test_refresh_follows_the_operating_point_of_a_default_step():
    """`DGridView.refresh` at a midday step of `default` (PV reverses flows since the first
    step, where the run linearised): a +1 MW injection's voltage change predicted by the
    refreshed sensitivities agrees with central finite differences of the AC power flow to
    1e-4 pu at every bus, for resource buses of several D grids; the worst of them is closer
    than the first step's sensitivities."""
    from dataclasses import replace
    from types import SimpleNamespace

    from tsodso.scenarios.load import load
    from tsodso.scenarios.world import prepare

    ctx = prepare(load("default"), "none")
    rt = ctx.levels["D"]
    model = rt.model
    dg = replace(ctx.market.distribution, refresh_vm_pu=0.0, refresh_loading_percent=0.0)
    sens = dg.model.sens
    before = sens.dv_dp.copy(), sens.dl_dp.copy()
    k = 48
    base = [a[k].copy() for a in (rt.re_load_p, rt.re_load_q, rt.re_sgen_p, rt.re_sgen_q,
                                  rt.re_sto_p, rt.re_sto_q)]
    res = model.solve(*base)
    reports = {g: SimpleNamespace(vm_pu=res.vm_pu[sl.bus], va_degree=res.va_degree[sl.bus],
                                  loading_percent=res.loading_percent[sl.branch],
                                  converged=True)
               for g, sl in rt.grids.items() if g in dg.grids}
    assert sorted(dg.refresh(reports)) == sorted(dg.grids)
    sgen = model.net.sgen
    probes = []
    for g in dg.grids[::5]:  # resource buses of three D grids, one sgen each
        buses = model.bus_index[dg.bus[g]]
        cand = np.flatnonzero(np.isin(sgen.bus, buses) & sgen.in_service & (sgen.scaling == 1)
                              & np.isin(sgen.bus, list(dg.model.inj_col)))
        probes.append(int(cand[len(cand) // 2]))
    h = 0.1
    errs, frozen = [], []
    for j in probes:
        col = dg.model.inj_col[int(sgen.bus.iloc[j])]
        out = []
        for sign in (1.0, -1.0):
            p = [a.copy() for a in base]
            p[2][j] += sign * h
            out.append(model.solve(*p))
        fd_v = (out[0].vm_pu - out[1].vm_pu) / (2 * h)
        fd_l = (out[0].loading_percent - out[1].loading_percent) / (2 * h)
        ok = np.isfinite(fd_v)
        err = np.abs(sens.dv_dp[ok, col] - fd_v[ok]).max()
        assert err <= 1e-4, err
        errs.append(err)
        frozen.append(np.abs(before[0][ok, col] - fd_v[ok]).max())
        # |I| has a kink where a flow passes zero: compare only where both one-sided
        # differences agree (no kink inside the +-h interval)
        fwd = (out[0].loading_percent - res.loading_percent) / h
        bwd = (res.loading_percent - out[1].loading_percent) / h
        flowing = (res.loading_percent > 1.0) & (np.abs(fwd - bwd) < 1e-3)
        assert np.abs(sens.dl_dp[flowing, col] - fd_l[flowing]).max() <= 1e-2
    # where the operating point moved most, the first step's sensitivities are off
    assert max(errs) < max(frozen), (errs, frozen)


def test_relinearise_writes_the_refreshed_rows_into_every_market_of_a_scheme():
    """`common` with the DSOs first (two markets with D rows): after a refresh at another
    step, each market's HiGHS matrix holds the D rows pooled from the new sensitivities from
    its next solve on (`set_coefs` hands HiGHS the rows once, at that solve's screening)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from tsodso.scenarios.load import load
    from tsodso.scenarios.world import prepare

    ctx = prepare(load("tiny", {"market.common_decomposed": True}), "common")
    scheme = ctx.scheme
    rt = ctx.levels["D"]
    dg = replace(scheme.dg, refresh_vm_pu=0.0, refresh_loading_percent=0.0)
    scheme.dg = dg
    k = 12
    res = rt.model.solve(*(a[k] for a in (rt.re_load_p, rt.re_load_q, rt.re_sgen_p,
                                          rt.re_sgen_q, rt.re_sto_p, rt.re_sto_q)))
    reports = {g: SimpleNamespace(vm_pu=res.vm_pu[sl.bus], va_degree=res.va_degree[sl.bus],
                                  loading_percent=res.loading_percent[sl.branch],
                                  converged=True)
               for g, sl in rt.grids.items() if g in dg.grids}
    old = [m.lp._ax.copy() for m, _ in scheme.d_lps]
    assert len(scheme.d_lps) == 2
    assert sorted(scheme.relinearise(reports)) == sorted(dg.grids)
    for (market, pools), before in zip(scheme.d_lps, old, strict=True):
        lp = market.lp
        assert lp.n_coef_updates == 1
        lp.solve(np.zeros(lp.n))  # HiGHS gets the new rows it holds at the next solve
        for dr in dg.rows(pools):
            g = [d.grid for d in market.drows].index(dr.grid)
            ks = [i for i, (gg, _) in enumerate(market._vrows) if gg == g]
            want = dr.dv[[market._vrows[i][1] for i in ks]] * market.dir[dr.pools]
            want[np.abs(want) < 1e-7] = 0.0
            got = lp._ax[lp.row_positions("v_up")[ks]][:, dr.pools].toarray()
            assert np.allclose(got, want, rtol=0, atol=1e-15)
            hi = lp.highs.getLp()  # and HiGHS solved with the same numbers in its rows
            a = sp.csc_matrix((np.asarray(hi.a_matrix_.value_), np.asarray(hi.a_matrix_.index_),
                               np.asarray(hi.a_matrix_.start_)),
                              shape=(hi.num_row_, hi.num_col_))
            cols = lp.col_index["x"][dr.pools]
            pos = lp._pos[lp.row_positions("v_dn")[ks]]
            assert np.allclose(a[pos[pos >= 0]][:, cols].toarray(), want[pos >= 0],
                               rtol=0, atol=1e-15)
        assert abs(lp._ax - before).max() > 1e-6  # the coefficients did move
