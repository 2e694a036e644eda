"""GridModel's Newton-Raphson agrees with pandapower's runpp on the same net."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from tsodso.core.powerflow import GridModel, PowerFlowNotConverged
from tsodso.scenarios.tiny import build_tiny


def _check(net, model, scale_load: float, scale_sgen: float):
    p = list(model.base_injections())
    p[0], p[1] = p[0] * scale_load, p[1] * scale_load
    p[2] = p[2] * scale_sgen
    res = model.solve(*p)
    net.load.p_mw *= scale_load
    net.load.q_mvar *= scale_load
    net.sgen.p_mw *= scale_sgen
    pp.runpp(net, numba=False)
    np.testing.assert_allclose(res.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-7)
    np.testing.assert_allclose(res.va_degree, net.res_bus.va_degree.to_numpy(), atol=1e-5)
    ref = np.r_[net.res_line.loading_percent, net.res_trafo.loading_percent]
    np.testing.assert_allclose(res.loading_percent, ref, atol=1e-4)
    ref_p = np.r_[net.res_line.p_from_mw, net.res_trafo.p_hv_mw]
    np.testing.assert_allclose(res.p_from_mw, ref_p, atol=1e-5)
    assert res.slack_s_mva.real.sum() == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-5)


def test_mv_oberrhein_matches_runpp():
    net = pn.mv_oberrhein()
    model = GridModel(net)
    _check(net, model, 1.3, 0.6)


def test_tiny_coupled_net_matches_runpp():
    net, _ = build_tiny()
    model = GridModel(net)
    _check(net, model, 0.8, 1.5)


def test_divergence_raises():
    net = pn.mv_oberrhein()
    model = GridModel(net, max_iter=5)
    p = list(model.base_injections())
    p[0] = p[0] * 200.0  # far beyond what the grid can carry
    with pytest.raises(PowerFlowNotConverged, match="did not converge"):
        model.solve(*p)


def test_a_day_of_solves_reusing_factors_matches_runpp(monkeypatch):
    """Successive solves of a changing net (the factors of earlier Jacobians are reused while
    they converge fast enough) each agree with runpp; far fewer factorisations than solves."""
    from tsodso.core import powerflow

    factorisations = []
    real_splu = powerflow.splu
    monkeypatch.setattr(powerflow, "splu", lambda a: factorisations.append(1) or real_splu(a))
    net = pn.mv_oberrhein()
    model = GridModel(net)
    base = [np.array(a) for a in model.base_injections()]
    rng = np.random.default_rng(3)
    for k in range(8):
        scale = 0.7 + 0.6 * rng.random(len(base[0]))
        p = list(base)
        p[0], p[1] = base[0] * scale, base[1] * scale
        p[2] = base[2] * (0.2 + 0.2 * k)
        res = model.solve(*p)
        net.load["p_mw"], net.load["q_mvar"], net.sgen["p_mw"] = p[0], p[1], p[2]
        pp.runpp(net, numba=False)
        np.testing.assert_allclose(res.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-7)
        np.testing.assert_allclose(res.va_degree, net.res_bus.va_degree.to_numpy(), atol=1e-5)
        ref = np.r_[net.res_line.loading_percent, net.res_trafo.loading_percent]
        np.testing.assert_allclose(res.loading_percent, ref, atol=1e-4)
    assert len(factorisations) < 8


def test_new_slack_voltage_matches_runpp():
    """A changed slack voltage (interface voltage, tap move) gives runpp's state at it."""
    net = pn.mv_oberrhein()
    model = GridModel(net)
    p = model.base_injections()
    model.solve(*p)
    res = model.solve(*p, v_ref=model.v_ref * 1.03)
    net.ext_grid["vm_pu"] = net.ext_grid.vm_pu * 1.03
    pp.runpp(net, numba=False)
    np.testing.assert_allclose(res.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-7)


def test_same_inputs_give_the_last_result_bit_for_bit():
    """A repeated solve is answered from the last result, and that is exactly what a Newton
    solve from the last solution returns."""
    net = pn.mv_oberrhein()
    model = GridModel(net)
    p = list(model.base_injections())
    p[0] = p[0] * 1.2
    first = model.solve(*p)
    again = model.solve(*p)
    assert model.skipped == 1 and again.iterations == 0
    assert np.array_equal(again.vm_pu, first.vm_pu, equal_nan=True)
    again.loading_percent[:] = 0.0  # the caller's copy: the model's stays intact
    assert np.array_equal(model.solve(*p).loading_percent, first.loading_percent)
    model._last = None  # force the Newton path
    newton = model.solve(*p)
    assert newton.iterations == 0
    for name in ("vm_pu", "va_degree", "loading_percent", "p_from_mw", "q_from_mvar"):
        assert np.array_equal(getattr(first, name), getattr(newton, name), equal_nan=True)
    p[0] = p[0] * 1.01
    assert model.solve(*p).iterations > 0  # changed inputs are solved
