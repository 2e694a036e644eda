"""PTDFs must reproduce pandapower's DC power flow: an injection change at a bus changes branch
flows by PTDF @ injection (compared with two ``rundcpp`` runs)."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from tsodso.coordination.ptdf import Ptdf, dc_flows, transmission_ptdf

TOL_MW = 1e-6


def _branch_flows(net, ptdf: Ptdf) -> np.ndarray:
    """DC flows of the last rundcpp, in PTDF row order (line from side, trafo HV side)."""
    out = np.empty(ptdf.n_branch)
    for r, (table, idx) in enumerate(zip(ptdf.branch_table, ptdf.branch_index, strict=True)):
        out[r] = (net.res_line.p_from_mw[idx] if table == "line"
                  else net.res_trafo.p_hv_mw[idx])
    return out


def _flow_change(net, ptdf: Ptdf, bus: int, mw: float) -> np.ndarray:
    """Flow change from two rundcpp runs, without and with an extra sgen of ``mw`` at ``bus``."""
    pp.rundcpp(net)
    before = _branch_flows(net, ptdf)
    sgen = pp.create_sgen(net, bus, p_mw=mw)
    pp.rundcpp(net)
    after = _branch_flows(net, ptdf)
    net.sgen.drop(sgen, inplace=True)
    return after - before


@pytest.mark.parametrize("case", [pn.case9, pn.case30])
def test_ptdf_matches_rundcpp_on_ieee_cases(case):
    net = case()
    ptdf = transmission_ptdf(net)
    assert ptdf.matrix.shape == (len(net.line) + len(net.trafo), len(net.bus))
    assert ptdf.n_branch == len(net.line) + len(net.trafo)
    for bus in net.bus.index[[1, 4, len(net.bus) - 1]]:
        mw = 10.0
        expected = _flow_change(net, ptdf, bus, mw)
        got = dc_flows(ptdf, {int(bus): mw})
        assert np.abs(got - expected).max() < TOL_MW
    # the reference bus absorbs the injection: its column is zero
    assert np.all(ptdf.matrix[:, ptdf.columns([ptdf.slack_bus])[0]] == 0.0)


def _small_net():
    """110 kV ext_grid -> trafo -> 20 kV meshed ring with a closed bus-bus switch, an isolated
    bus (behind an open switch) and an out-of-service line."""
    net = pp.create_empty_network()
    hv = pp.create_bus(net, 110.0, name="hv")
    b1 = pp.create_bus(net, 20.0, name="b1")
    b2 = pp.create_bus(net, 20.0, name="b2")
    b3 = pp.create_bus(net, 20.0, name="b3")  # joined to b2 by a closed bus-bus switch
    b4 = pp.create_bus(net, 20.0, name="b4")
    b5 = pp.create_bus(net, 20.0, name="b5")  # isolated: only an open switch to b4
    pp.create_ext_grid(net, hv)
    pp.create_transformer(net, hv, b1, std_type="25 MVA 110/20 kV")
    std = "NA2XS2Y 1x185 RM/25 12/20 kV"
    pp.create_line(net, b1, b2, 2.0, std)
    pp.create_line(net, b3, b4, 3.0, std)
    pp.create_line(net, b4, b1, 1.5, std)
    pp.create_line(net, b2, b4, 2.5, std, in_service=False)
    pp.create_switch(net, b2, b3, et="b", closed=True)
    pp.create_switch(net, b4, b5, et="b", closed=False)
    pp.create_load(net, b4, p_mw=5.0)
    return net, (hv, b1, b2, b3, b4, b5)


def test_ptdf_small_net_with_trafo_and_bus_switch():
    net, (hv, b1, b2, b3, b4, b5) = _small_net()
    ptdf = transmission_ptdf(net)
    # the out-of-service line is not a row; lines 0..2 and the trafo are
    assert list(zip(ptdf.branch_table, ptdf.branch_index, strict=True)) == [
        ("line", 0), ("line", 1), ("line", 2), ("trafo", 0)]
    assert ptdf.slack_bus == hv
    col = dict(zip(ptdf.bus.tolist(), range(ptdf.n_bus), strict=True))
    # buses merged by the closed switch share one column; the isolated bus moves nothing
    assert np.array_equal(ptdf.matrix[:, col[b2]], ptdf.matrix[:, col[b3]])
    assert np.all(ptdf.matrix[:, col[b5]] == 0.0)
    for bus in (b1, b2, b3, b4):
        expected = _flow_change(net, ptdf, bus, 10.0)
        got = ptdf.matrix[:, col[bus]] * 10.0
        assert np.abs(got - expected).max() < TOL_MW
    # every MW injected in the 20 kV grid leaves through the trafo towards the ext_grid
    trafo_row = ptdf.rows("trafo", [0])[0]
    for bus in (b1, b2, b3, b4):
        assert ptdf.matrix[trafo_row, col[bus]] == pytest.approx(-1.0, abs=1e-12)


def test_ptdf_three_bus_ring_by_hand():
    """Equal reactances: 1 MW at bus 1 to the slack bus 0 splits 2/3 direct, 1/3 via bus 2."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110.0) for _ in range(3)]
    pp.create_ext_grid(net, b[0])
    for f, t in ((0, 1), (1, 2), (0, 2)):
        pp.create_line_from_parameters(net, b[f], b[t], 10.0, r_ohm_per_km=0.01,
                                       x_ohm_per_km=0.4, c_nf_per_km=0.0, max_i_ka=1.0)
    ptdf = transmission_ptdf(net)
    expected = np.array([  # rows: line 0-1, 1-2, 0-2 (from -> to); columns: bus 0, 1, 2
        [0.0, -2 / 3, -1 / 3],
        [0.0, 1 / 3, -1 / 3],
        [0.0, -1 / 3, -2 / 3],
    ])
    assert np.allclose(ptdf.matrix, expected, atol=1e-12)


def test_ptdf_with_two_ext_grids_matches_rundcpp():
    """Several reference buses (like the SimBench EHV stub) each hold their angle."""
    net, (hv, b1, b2, b3, b4, _b5) = _small_net()
    pp.create_ext_grid(net, b4)
    ptdf = transmission_ptdf(net)
    assert set(ptdf.ref_buses.tolist()) == {hv, b4}
    col = ptdf.columns([b1, b2, b3])
    for bus, c in zip((b1, b2, b3), col, strict=True):
        expected = _flow_change(net, ptdf, bus, 7.0)
        assert np.abs(ptdf.matrix[:, c] * 7.0 - expected).max() < TOL_MW


def test_dc_flows_inputs():
    net = pn.case9()
    ptdf = transmission_ptdf(net)
    inj = np.zeros(ptdf.n_bus)
    inj[ptdf.columns([4, 6])] = [5.0, -3.0]
    assert np.allclose(dc_flows(ptdf, inj), ptdf.matrix @ inj)
    assert np.allclose(dc_flows(ptdf, {4: 5.0, 6: -3.0}), ptdf.matrix @ inj)
    with pytest.raises(ValueError):
        dc_flows(ptdf, np.zeros(3))
