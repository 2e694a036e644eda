"""On the built-in dgrid scenario distribution congestion decides: without coordination the
MV grids are overloaded at midday, and the common TSO-DSO market removes those overloads on
the AC grid (the grids' own power flow after the market, not the market's linear model)."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.results.read import level_violations
from tsodso.scenarios.load import load

from tsodso import results
from tsodso.comparison import compare


def d_violations(path) -> tuple[int, int]:
    """(branch-steps above the loading limit, bus-steps outside the band) of the D grids,
    from the AC power flow results recorded per grid."""
    volt, over = level_violations(path, "D")
    return over, volt


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # the whole day in hourly steps (the tap changers act every step, at most 2 moves each)
    sc = load("dgrid", {"run.step_s": 3600, "run.steps": 24})
    out = tmp_path_factory.mktemp("dgrid")
    schemes = ["none", "centralized", "common"]
    compare(sc, schemes, out)
    return {s: out / f"{s}.h5" for s in schemes}, results.compare(out)


def test_none_leaves_d_overloads_that_common_removes(runs):
    files, table = runs
    none_over, none_volt = d_violations(files["none"])
    common_over, common_volt = d_violations(files["common"])
    assert none_over > 50  # MV branches above 100 % at midday without coordination
    assert none_volt > 0
    assert common_over == 0
    # D voltage: `none` leaves the HV lines congested, which holds the HV (and so MV) voltages
    # down; relieving them raises the MV voltages beyond what the taps' moves per step catch.
    # The common market weighs that against the HV relief; the TSO's market alone does not.
    central = table.loc["centralized", "unserved_voltage_d_puh"]
    assert table.loc["common", "unserved_voltage_d_puh"] < central
    assert common_volt < d_violations(files["centralized"])[1]
    assert table.loc["common", "unserved_overload_d_mwh"] == 0.0
    assert table.loc["none", "unserved_overload_d_mwh"] > 10.0
    assert table.loc["common", "dso_paid_eur"] > 0  # the DSOs buy against their congestion


def test_centralized_leaves_d_overloads(runs):
    """The TSO's market alone does not see the MV grids: overloads stay (and cost more)."""
    files, table = runs
    assert d_violations(files["centralized"])[0] > 0
    assert (table.loc["centralized", "unserved_overload_d_mwh"]
            > 10 * table.loc["common", "unserved_overload_d_mwh"] + 1.0)
    assert table.loc["common", "social_cost_eur"] < table.loc["centralized", "social_cost_eur"]


def test_dgrid_grows_mv_pv_only_in_the_d_grids():
    sc = load("dgrid")
    assert sc.growth.pv.D > 1.0 and sc.growth.pv.T == 1.0
    base = load("dgrid", {"growth.d_stress": 0.0})
    assert base.growth.d_stress == 0.0 and np.isclose(sc.growth.d_stress, 1.0)
