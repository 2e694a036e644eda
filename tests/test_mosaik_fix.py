"""mosaik 3.6 keeps the futures of cancelled waits; our patch keeps the per-step cost flat."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from mosaik.progress import Progress
from tsodso.simulators import mosaik_fix

from tests.conftest import make_scenario
from tsodso.runner import run


def _max_waiting(monkeypatch, tmp_path, steps: int, patched: bool) -> int:
    """Most futures any Progress held at once during a `tiny` run of `steps` steps."""
    most = [0]
    base = mosaik_fix._set if patched else mosaik_fix._original_set

    def recording_set(self, time):
        most[0] = max(most[0], len(self._futures))
        base(self, time)

    monkeypatch.setattr(mosaik_fix, "apply", lambda: False)
    monkeypatch.setattr(Progress, "set", recording_set)
    run(make_scenario(steps=steps), "none", tmp_path / f"{steps}-{patched}.h5")
    return most[0]


def test_guard_matches_installed_mosaik():
    assert mosaik_fix.needed() == version("mosaik").startswith("3.6.")


@pytest.mark.skipif(not mosaik_fix.needed(), reason="installed mosaik does not have the defect")
def test_cancelled_waits_are_dropped(monkeypatch, tmp_path):
    stock_30 = _max_waiting(monkeypatch, tmp_path, 30, patched=False)
    stock_60 = _max_waiting(monkeypatch, tmp_path, 60, patched=False)
    assert stock_60 > stock_30 > 30, "the stock defect is no longer reproducible"
    assert _max_waiting(monkeypatch, tmp_path, 60, patched=True) <= 5


def test_apply_installs_the_patch(monkeypatch):
    monkeypatch.setattr(Progress, "set", mosaik_fix._original_set)
    assert mosaik_fix.apply() == mosaik_fix.needed()
    if mosaik_fix.needed():
        assert Progress.set is mosaik_fix._set
