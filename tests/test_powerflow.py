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
