"""Shared fixtures: scenarios with overrides, and runs of the co-simulation into temp files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tsodso.scenarios.load import parse

ZERO_ERRORS = """
[forecast.wind]
sigma = 0.0
[forecast.pv]
sigma = 0.0
[forecast.other_res]
sigma = 0.0
[forecast.load]
sigma = 0.0
[forecast.heat_pump]
sigma = 0.0
[forecast.storage]
sigma = 0.0
"""


def scenario_text(source: str = "tiny", steps: int = 4, start: str = "2016-06-15T10:00:00",
                  extra: str = "", seed: int = 1) -> str:
    grid = '[grid]\nsource = "tiny"\n' if source == "tiny" else '[grid]\nsource = "simbench"\n'
    return textwrap.dedent(f"""
        name = "test-{source}"
        {grid}
        [run]
        start = {start}
        steps = {steps}
        step_s = 900
        seed = {seed}
        """) + extra


def make_scenario(**kw):
    return parse(scenario_text(**kw), "test")


@pytest.fixture
def tmp_h5(tmp_path: Path) -> Path:
    return tmp_path / "run.h5"
