"""Property-based fuzzing of the scenario loader (issue 13): any file gives one line and exit 2,
or a valid scenario; valid ones found run for 2 steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tsodso.scenarios.load import ScenarioError, parse
from tsodso.scenarios.schema import Scenario

from tsodso.cli import main

KINDS = ("wind", "pv", "other_res", "load", "storage")
KEYS: dict[str, tuple[str, ...]] = {
    "run": ("start", "steps", "step_s", "seed"),
    "grid": ("source", "code", "mv_busbar_pu"),
    "market": ("pricing", "voltage_margin_pu", "loading_margin_percent", "brp_trading"),
    "coupling": ("tolerance_mw", "max_iterations"),
    "penalties": ("imbalance_eur_per_mwh",),
    "limits.D": ("vm_min_pu", "vm_max_pu", "loading_max_percent"),
    **{f"flexibility.{k}": ("share", "price_up", "price_down") for k in KINDS},
    "flexibility.balancing": ("blocks", "block_mw"),
    **{f"forecast.{k}": ("sigma", "rho", "common") for k in KINDS},
}

values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1.2),
    st.text(max_size=30),
    st.sampled_from(["tiny", "simbench", "1-HV-mixed--0-sw", "1-HVMV-mixed-all-2-sw", "pay_as_bid",
                     "1e3", "../x", "=1+1"]),
    st.datetimes(min_value=datetime(2015, 12, 30), max_value=datetime(2017, 1, 2)),
    st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2016, 12, 1),
                 timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.lists(st.integers(), max_size=3),
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """TOML text: a scenario with random sections, keys (some unknown) and values, or
    mutated bytes of one."""
    doc: dict = {}
    if draw(st.booleans()):
        doc["name"] = draw(st.one_of(st.text(max_size=20), values))
    doc["grid"] = {"source": "tiny"} if draw(st.integers(0, 3)) else {}
    for _ in range(draw(st.integers(0, 5))):
        section = draw(st.sampled_from(sorted(KEYS)))
        key = draw(st.one_of(st.sampled_from(KEYS[section]), st.text(min_size=1, max_size=8)))
        node = doc
        for part in section.split("."):
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[key] = draw(values)
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        text = ""
    if draw(st.integers(0, 4)) == 0:  # damage the text
        pos = draw(st.integers(0, max(0, len(text))))
        text = text[:pos] + draw(st.text(max_size=10)) + text[pos:]
    return text


VALID: list[Scenario] = []


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents())
def test_loader_gives_one_line_or_a_scenario(text):
    try:
        sc = parse(text, "fuzz.toml")
    except ScenarioError as exc:
        msg = str(exc)
        assert "\n" not in msg and len(msg) < 1000, msg
        return
    assert isinstance(sc, Scenario)
    if sc.grid.source == "tiny" and len(VALID) < 3:
        VALID.append(sc)


def test_cli_validate_exit_codes(tmp_path):
    """The same property through the command line, on a few fixed and damaged files."""
    for i, text in enumerate(['name = "ok"\n[grid]\nsource = "tiny"\n', "name = ", "\x00",
                              '[run]\nsteps = 0\nname="x"', "a.b.c = 1"]):
        path = tmp_path / f"{i}.toml"
        path.write_text(text)
        res = CliRunner().invoke(main, ["validate", str(path)])
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and (res.exit_code == 0) == lines[0].startswith("ok:"), res.output
        assert res.exit_code in (0, 2)


def test_valid_fuzzed_scenarios_run_two_steps(tmp_path: Path):
    """Valid scenarios found by the fuzzer (or a fixed one) complete 2 steps."""
    from tsodso.runner import run

    found = VALID or [parse('name = "f"\n[grid]\nsource = "tiny"\n', "fixed")]
    for i, sc in enumerate(found[:2]):
        sc = sc.model_copy(update={"run": sc.run.model_copy(update={"steps": 2})})
        kpis = run(sc, "centralized", tmp_path / f"{i}.h5")
        assert "social_cost_eur" in kpis
