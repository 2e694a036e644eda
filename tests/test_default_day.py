"""On the built-in default scenario the comparison is meaningful (midday of the default day)."""

from __future__ import annotations

import pytest
from tsodso.coordination.schemes import scheme_names
from tsodso.scenarios.load import load

from tsodso import results
from tsodso.comparison import compare


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    sc = load("default", {"run.start": "2016-05-30T11:00:00", "run.steps": 12})
    out = tmp_path_factory.mktemp("default")
    compare(sc, list(scheme_names()), out)
    return results.compare(out)


def test_d_congestion_and_imbalance_occur(table):
    none = table.loc["none"]
    assert none["unserved_imbalance_mwh"] > 10.0  # the system is out of balance
    assert none["voltage_violation_bus_steps"] > 0 or none["overload_branch_steps"] > 0
    assert table.loc["local", "dso_paid_eur"] > 0  # DSOs buy against D congestion


def test_every_scheme_activates_and_schemes_differ(table):
    for scheme in scheme_names():
        if scheme != "none":
            assert table.loc[scheme, "activated_mwh"] > 0, scheme
    totals = table["social_cost_eur"]
    assert totals.nunique() >= 4
    assert totals["none"] == totals.max()
    # the joint market beats the sequential DSO-first market on the same bids
    assert totals["common"] < totals["local"]
