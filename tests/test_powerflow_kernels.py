"""The compiled Newton passes and element injections give, bit for bit, what the former
per-call Python forms gave (the same kernels and operations, one Python call each)."""

from __future__ import annotations

import numpy as np
import pandapower.networks as pn
import pytest
from tsodso.core import powerflow
from tsodso.core.powerflow import CHORD_ITERATIONS, CHORD_RATE, Factors, GridModel
from tsodso.scenarios.tiny import build_tiny


def _newton_python(model: GridModel, v: np.ndarray, sbus: np.ndarray):
    """The Newton loop as it was written before `_passes`: one Python call per kernel."""
    tol = model.tol / model.base_mva
    f, i_bus, err = model._mismatch(v, sbus)
    if err < tol:
        return v, 0
    it = factorisations = 0
    for _ in range(model.max_iter + CHORD_ITERATIONS):
        fresh = model._lu is None
        if fresh:
            if factorisations == model.max_iter:
                break
            model._lu = Factors(model._jacobian(v, i_bus))
            factorisations += 1
        dx = powerflow._lu_solve(*model._lu.args, f)
        if not np.all(np.isfinite(dx)):
            break
        v_try = powerflow._update_kernel(v, dx, model.pvpq, model.pq)
        it += 1
        f_try, i_try, err_try = model._mismatch(v_try, sbus)
        if not fresh and not (err_try <= CHORD_RATE * err):
            model._lu = None
            continue
        v, f, i_bus, err = v_try, f_try, i_try, err_try
        if err < tol:
            return v, it
    model._lu = None
    raise powerflow.PowerFlowNotConverged("did not converge")


def _element_s_numpy(model: GridModel, p_load, q_load, p_sgen, q_sgen, p_sto, q_sto):
    """`GridModel._element_s` as it was written with scipy products."""
    inc = model._inc
    s = -(inc["load"] @ (p_load + 1j * q_load))
    s += inc["sgen"] @ (p_sgen + 1j * q_sgen)
    s -= inc["storage"] @ (p_sto + 1j * q_sto)
    return s / model.base_mva


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.int64)


def _net(build, sn_mva: float):
    net = build()
    net.sn_mva = sn_mva  # a base other than 1 MVA: the per-unit divisions are not exact
    return net


@pytest.mark.parametrize("build", [lambda: build_tiny()[0], pn.mv_oberrhein])
def test_newton_passes_equal_the_python_loop(build, monkeypatch):
    """A sequence of solves (factors kept, chord steps taken and discarded, refactorised)
    takes the same iterates to the bit with the compiled passes and with the Python loop."""
    counts = {"splu": 0}
    real = powerflow.splu
    monkeypatch.setattr(powerflow, "splu", lambda a: counts.__setitem__(
        "splu", counts["splu"] + 1) or real(a))
    fast, slow = GridModel(_net(build, 3.7)), GridModel(_net(build, 3.7))
    rng = np.random.default_rng(3)
    base = list(fast.base_injections())
    per_solve = []
    for k in range(12):
        # loads swinging between 0.3 and 2.5 times their own: the earlier factors' chord
        # steps then fail to halve the mismatch now and then (discarded, refactorised)
        scale = (0.3, 2.5, 1.0)[k % 3]
        p = [x * scale * (1.0 + 0.25 * rng.standard_normal(len(x))) if j in (0, 2) else x
             for j, x in enumerate(base)]
        sbus = fast._element_s(*p) + fast.s_const
        before = counts["splu"]
        v_fast, it_fast = fast._newton(fast.v.copy(), sbus)
        n_fast = counts["splu"] - before
        before = counts["splu"]
        v_slow, it_slow = _newton_python(slow, slow.v.copy(), sbus)
        n_slow = counts["splu"] - before
        assert it_fast == it_slow and n_fast == n_slow, k
        assert np.array_equal(_bits(v_fast), _bits(v_slow)), k
        fast.v, slow.v = v_fast, v_slow
        per_solve.append(n_fast)
    assert sum(per_solve) >= 3 and max(per_solve) >= 1  # factors renewed along the way


def test_newton_passes_raise_as_the_python_loop():
    """An overloaded net fails to converge in both forms, with the same iteration budget."""
    model = GridModel(pn.mv_oberrhein(), max_iter=5)
    p = list(model.base_injections())
    p[0] = p[0] * 200.0
    sbus = model._element_s(*p) + model.s_const
    with pytest.raises(powerflow.PowerFlowNotConverged):
        model._newton(model.v.copy(), sbus)
    with pytest.raises(powerflow.PowerFlowNotConverged):
        _newton_python(model, model.v.copy(), sbus)


def test_element_injections_equal_the_scipy_products():
    """Bit for bit, signed zeros included, with zero, negative and out-of-service elements."""
    net = _net(pn.mv_oberrhein, 2.9)
    net.load.loc[net.load.index[:3], "in_service"] = False
    net.sgen.loc[net.sgen.index[:2], "scaling"] = 0.7
    model = GridModel(net)
    rng = np.random.default_rng(5)
    for trial in range(5):
        p = []
        for x in model.base_injections():
            y = rng.standard_normal(len(x)) * 3.0
            y[rng.random(len(x)) < 0.3] = 0.0
            y[rng.random(len(x)) < 0.1] = -0.0
            p.append(y)
        got = model._element_s(*p)
        want = _element_s_numpy(model, *p)
        assert np.array_equal(_bits(got), _bits(want)), trial
