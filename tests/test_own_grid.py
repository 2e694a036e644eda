"""Own grids: a pandapower net saved with `to_json`, profiles from a CSV, every scheme runs;
`validate` reports the first problem of a grid in one line (exit 2), quickly for SimBench codes.
"""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from tsodso.scenarios.grids import check_grid, load_own, simbench_codes
from tsodso.scenarios.load import ScenarioError, load, parse
from tsodso.scenarios.split import split_net

from tests.own_grid import scenario_toml, write
from tsodso.cli import main


@pytest.fixture
def own(tmp_path):
    grid, prof = write(tmp_path)
    path = tmp_path / "own.toml"
    path.write_text(scenario_toml(grid, prof, steps=3))
    return tmp_path, grid, prof, path


def validate(path) -> tuple[int, list[str]]:
    res = CliRunner().invoke(main, ["validate", str(path)])
    return res.exit_code, res.output.strip().splitlines()


def test_own_grid_splits_into_t_and_two_d_grids(own):
    _, _, _, path = own
    sc = load(str(path))
    net, profiles = load_own(sc)
    split = split_net(net, [0, 1])
    assert split.t_name == "T" and sorted(split.d_buses) == ["D1", "D2"]
    assert [i.trafo for i in split.interfaces] == [0, 1]
    assert profiles[("load", "p_mw")].shape == (192, len(net.load))
    code, lines = validate(path)
    assert code == 0 and lines[0].startswith("ok:"), lines


def test_explicit_interfaces_and_relative_paths(own):
    folder, _, _, _ = own
    path = folder / "rel.toml"
    path.write_text('name = "own"\n[grid]\nsource = "pandapower"\nfile = "grid.json"\n'
                    'interfaces = [0, 1]\nprofiles = "profiles.csv"\n'
                    'profiles_start = 2023-03-01T00:00:00\n'
                    '[run]\nstart = 2023-03-01T10:00:00\nsteps = 2\n')
    check_grid(load(str(path)))


def test_every_scheme_runs_on_an_own_grid(own, tmp_path):
    from tsodso.coordination.schemes import scheme_names

    from tsodso.comparison import compare

    _, _, _, path = own
    rows = compare(load(str(path)), list(scheme_names()), tmp_path / "out")
    assert [r["scheme"] for r in rows] == list(scheme_names())
    for r in rows:
        assert r["social_cost_eur"] == r["social_cost_eur"]  # a number, not NaN
    import tsodso.results as results

    run = results.open(tmp_path / "out" / "common.h5")
    assert set(run.grids) >= {"T", "D1", "D2"}


def _write(folder, text):
    path = folder / "bad.toml"
    path.write_text(text)
    return path


def test_missing_file_is_one_line(own):
    folder, _, prof, _ = own
    path = _write(folder, scenario_toml(folder / "nope.json", prof))
    code, lines = validate(path)
    assert code == 2 and len(lines) == 1 and "no such file" in lines[0], lines


def test_no_d_grid_is_one_line(own):
    folder, grid, prof, _ = own
    path = _write(folder, scenario_toml(grid, prof).replace("interface_kv = 110.0",
                                                            "interface_kv = 20.0"))
    code, lines = validate(path)
    assert code == 2 and len(lines) == 1 and "interface_kv" in lines[0], lines


def test_interface_that_does_not_separate_is_one_line(own, tmp_path):
    import pandapower as pp

    folder, grid, prof, _ = own
    net = pp.from_json(str(grid))
    pp.create_line(net, 0, 3, 5.0, "149-AL1/24-ST1A 110.0")  # HV bus to an MV bus: no cut
    bad = tmp_path / "loop.json"
    pp.to_json(net, str(bad))
    path = _write(folder, scenario_toml(bad, prof))
    code, lines = validate(path)
    assert code == 2 and len(lines) == 1 and "connected back to the T grid" in lines[0], lines


def test_profiles_missing_an_element_is_one_line(own):
    folder, grid, prof, _ = own
    df = pd.read_csv(prof).drop(columns=["sgen.1.p_mw"])
    short = folder / "short.csv"
    df.to_csv(short, index=False)
    code, lines = validate(_write(folder, scenario_toml(grid, short)))
    assert code == 2 and len(lines) == 1 and "no profile for sgen 1" in lines[0], lines


def test_window_outside_profiles_is_one_line(own):
    folder, grid, prof, _ = own
    text = scenario_toml(grid, prof, steps=200)
    code, lines = validate(_write(folder, text))
    assert code == 2 and len(lines) == 1 and "past the end of the profiles" in lines[0], lines
    early = text.replace("start = 2023-03-01T10:00:00", "start = 2023-02-01T10:00:00")
    code, lines = validate(_write(folder, early))
    assert code == 2 and len(lines) == 1 and "not a profile row" in lines[0], lines


def test_simbench_layout_profiles(own):
    """SimBench's relative layout: `<profile>_pload` per load profile, `<profile>` per sgen."""
    import pandapower as pp

    folder, grid, prof, _ = own
    net = pp.from_json(str(grid))
    net.load["profile"] = "H0"
    net.sgen["profile"] = ["WP1", "PV1", "PV1"]
    net.storage["profile"] = "BAT"
    sb_grid = folder / "sb.json"
    pp.to_json(net, str(sb_grid))
    pd.DataFrame({"time": range(192), "H0_pload": 0.8, "H0_qload": 0.8, "WP1": 0.5,
                  "PV1": 0.25, "BAT": 0.0}).to_csv(folder / "sb.csv", sep=";", index=False)
    sc = parse(scenario_toml(sb_grid, folder / "sb.csv"), "sb")
    net2, profiles = load_own(sc)
    assert profiles[("load", "p_mw")].iloc[0].tolist() == pytest.approx(
        (0.8 * net2.load.p_mw).tolist())
    assert profiles[("sgen", "p_mw")].iloc[0].tolist() == pytest.approx([15.0, 1.0, 1.0])


@pytest.mark.parametrize("code, expected", [
    ("not-a-code", "unknown SimBench grid code"),
    ("1-MV-rural--0-sw", "no transmission (EHV/HV) or no distribution")])
def test_bad_simbench_code_fails_at_validate(tmp_path, code, expected):
    path = _write(tmp_path, f'name = "x"\n[grid]\ncode = "{code}"\n')
    code_, lines = validate(path)
    assert code_ == 2 and len(lines) == 1 and expected in lines[0], lines


def test_shipped_simbench_code_list_matches_simbench():
    import simbench

    assert simbench_codes() == frozenset(simbench.collect_all_simbench_codes())


def test_own_keys_need_source_pandapower():
    with pytest.raises(ScenarioError, match="needs source"):
        parse('name = "x"\n[grid]\nfile = "a.json"\n', "x")
    with pytest.raises(ScenarioError, match="needs grid.file"):
        parse('name = "x"\n[grid]\nsource = "pandapower"\n', "x")
