"""Per-step state kept flat: the rebound holds only the steps still due, the needs of all
grids are assessed at once against each grid's own limits."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from tsodso.coordination.need import Assessor, GridLimits, assess
from tsodso.simulators.rebound import Rebound


def test_rebound_holds_only_the_steps_still_due_over_a_long_run():
    """A year of steps needs a ring of max(payback) + 1 rows; each activation is paid back
    over its load's own number of steps, and nothing is left once they are over."""
    r = Rebound(35_136, np.array([4, 2, 0]))
    assert r.pending.shape == (5, 3)
    k = 30_000
    assert np.all(r.due(k) == 0.0)
    r.shift(k, np.array([-2.0, 1.0, 5.0]))  # consume 2 MW less, 1 MW more, no payback
    for j in (1, 2):
        np.testing.assert_allclose(r.due(k + j), [0.5, -0.5, 0.0])
    for j in (3, 4):
        np.testing.assert_allclose(r.due(k + j), [0.5, 0.0, 0.0])
    r.shift(k + 4, np.array([4.0, 0.0, 0.0]))
    np.testing.assert_allclose(r.due(k + 5), [-1.0, 0.0, 0.0])
    assert np.all(r.due(k + 9) == 0.0)  # all paid back; the rows were reused and cleared
    with pytest.raises(ValueError, match="already paid back"):
        r.due(k)


def _report(vm, loading, imbalance=0.0):
    return SimpleNamespace(vm_pu=np.array(vm), loading_percent=np.array(loading),
                           imbalance_mw=imbalance)


def test_needs_of_all_grids_at_once_use_each_grids_limits():
    """Two grids with different bands and ratings: hand-computed overloads and voltage
    excess per grid; the same Assessor gives the same needs step after step."""
    limits = {"T": GridLimits(0.95, 1.05, 100.0, np.array([200.0, 100.0])),
              "D": GridLimits(0.90, 1.10, 80.0, np.array([10.0]))}
    reports = {"T": _report([1.06, 1.0, np.nan], [110.0, 50.0], 3.0),
               "D": _report([0.85, 1.2], [np.nan], -1.0)}
    a = Assessor(limits)
    for needs in (a(7, reports), a(7, reports), assess(7, reports, limits)):
        assert needs.imbalance_mw == 2.0 and needs.area_imbalance == {"T": 3.0, "D": -1.0}
        np.testing.assert_allclose(needs.overload_mva["T"], [20.0, 0.0])  # 10 % of 200 MVA
        np.testing.assert_allclose(needs.overload_mva["D"], [0.0])  # NaN counts as 0
        np.testing.assert_allclose(needs.voltage_excess_pu["T"], [0.01, 0.0, 0.0])
        np.testing.assert_allclose(needs.voltage_excess_pu["D"], [0.05, 0.1])
        assert needs.overvoltage["T"].tolist() == [True, False, False]
        assert needs.undervoltage["D"].tolist() == [True, False]
        assert needs.overvoltage["D"].tolist() == [False, True]
    reports["D"] = _report([1.0, 1.0, 1.0], [90.0, 79.0])  # the grids' sizes changed
    np.testing.assert_allclose(a(8, reports).overload_mva["D"], [1.0, 0.0])
