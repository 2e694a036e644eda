"""Scheme rules on the linear model, and whole runs of every scheme on `tiny`."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from tsodso.coordination.market import DState
from tsodso.coordination.schemes import scheme_names
from tsodso.scenarios.world import prepare

from tests.conftest import make_scenario
from tsodso.runner import run


@pytest.fixture(scope="module")
def local_ctx():
    return prepare(make_scenario(steps=4, start="2016-06-15T12:00:00"), "local")


def test_d_offer_caps_never_create_violations(local_ctx):
    """Whatever subset of the capped D offers the TSO takes, no D limit is newly broken."""
    scheme = local_ctx.scheme
    book = scheme.book
    rng = np.random.default_rng(5)
    mw = np.where(scheme.is_d, rng.uniform(0.0, 3.0, len(book)), 0.0)
    state = {}
    for g in local_ctx.dso_grids:
        n_bus = len(local_ctx.levels["D"].grids[g].bus)
        n_br = len(local_ctx.levels["D"].grids[g].branch)
        vm = np.full(n_bus, 1.095)  # 0.005 pu below the 1.10 limit
        vm[0] = 1.12  # one bus already above
        state[g] = DState(vm, np.full(n_br, 95.0), 0.9, 1.10, 100.0)
    caps = scheme.dg.deliverable(mw, state, no_worse=True)
    assert np.all(caps <= mw + 1e-12) and np.all(caps >= 0)
    for trial in range(20):
        take = caps * rng.uniform(0.0, 1.0, len(caps)) if trial else caps
        signed = book.direction * take
        for g, st in state.items():
            dv, dl = scheme.dg.effect(g, signed)
            vm_new, ld_new = st.vm + dv, st.loading + dl
            assert np.all(vm_new <= np.maximum(st.vm_max, st.vm) + 1e-9)
            assert np.all(vm_new >= np.minimum(st.vm_min, st.vm) - 1e-9)
            assert np.all(ld_new <= np.maximum(st.loading_max, st.loading) + 1e-7)
    # offers that lower the voltage stay available where voltage is the binding limit
    down = scheme.is_d & (book.direction == -1) & (book.kind != "load")
    assert caps[down].sum() > 0


# enough flexibility in each D grid to cover its own forecast errors in both directions
AMPLE = """
[flexibility.load]
share = 0.5
price_up = 120.0
price_down = 25.0
"""


@pytest.mark.parametrize("scheme", [s for s in scheme_names() if s != "none"])
def test_every_scheme_balances_tiny(tmp_path, scheme):
    path = tmp_path / f"{scheme}.h5"
    kpis = run(make_scenario(steps=6, start="2016-06-15T11:00:00", extra=AMPLE), scheme, path)
    with h5py.File(path) as f:
        buyers = set(f["activations/buyer"].asstr()[:])
        unserved = f["needs/unresolved_imbalance_mw"][:]
        kinds = set(f["conflicts/kind"].asstr()[:])
    assert kpis["activated_mwh"] > 0
    assert np.all(np.abs(unserved) < 1.0), unserved
    parties = {"BRP:res", "BRP:load"} if scheme == "integrated" else set()
    assert buyers <= {"TSO", "DSO:MV1.101", "DSO:MV2.101"} | parties
    if scheme == "shared_balancing":
        # the DSOs' own bids suffice, so their interfaces stay on schedule
        assert "interface_schedule_deviation" not in kinds
        assert kpis["dso_paid_eur"] > 0
