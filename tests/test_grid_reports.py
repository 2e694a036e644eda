"""A solve's reports are made when first read, once (simulators/grid.py: LazyReports)."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.simulators.grid import GridReport, LazyReports


def _report(grid: str) -> GridReport:
    return GridReport(grid, "D", 0, np.ones(2), np.zeros(1), np.zeros(1), 0.0, {}, True, 1)


def test_reports_are_made_when_read_and_kept():
    made: list[str] = []

    def make(grid: str) -> GridReport:
        made.append(grid)
        return _report(grid)

    reps = LazyReports(["a", "b"], make)
    assert list(reps) == ["a", "b"] and len(reps) == 2 and made == []
    first = reps["b"]
    assert made == ["b"] and first.grid == "b"
    assert reps["b"] is first and made == ["b"]  # kept: the same object on every read
    assert dict(reps) == {"a": reps["a"], "b": first} and made == ["b", "a"]
    with pytest.raises(KeyError):
        reps["c"]
    assert "c" not in reps and made == ["b", "a"]
