"""Hostile and careless input (issue 13): bad scenario files, bad paths, damaged, foreign and
shared results files, spreadsheet formulas. Every problem is one line and exit 2; nothing
waits; nothing is overwritten without being asked."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import h5py
import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner
from tsodso.core.records import Event
from tsodso.core.vocabulary import ASSET_KINDS
from tsodso.results.api import export, neutralise
from tsodso.results.kpis import KPI_DESCRIPTIONS, KPI_UNITS
from tsodso.results.read import load_table, open_results, read_meta
from tsodso.results.writer import ResultsFileError, ResultsWriter

from tests.test_results_writer import DSO_GRIDS, GRIDS, INTERFACES, make_meta, make_record
from tsodso.cli import main

ROOT = Path(__file__).resolve().parent.parent
TSODSO = [sys.executable, "-m", "tsodso.cli"]
TINY = 'name = "t"\n[grid]\nsource = "tiny"\n[run]\nstart = 2016-06-15T10:00:00\nsteps = 2\n'


def cli(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run the command line in this process: (exit code, stderr + stdout)."""
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        res = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    return res.exit_code, res.output


def assert_one_line_error(code: int, out: str) -> None:
    assert code == 2, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) <= 410, out
    assert "Traceback" not in out


def small_file(path: Path, n: int = 200, scenario: str = "unit") -> Path:
    """A synthetic results file (the writer tests' records) with events in some steps."""
    meta = make_meta(n)
    meta = type(meta)(**{**meta.__dict__, "scenario": scenario})
    w = ResultsWriter(path, meta, GRIDS, INTERFACES, DSO_GRIDS, block_steps=16)
    for t in range(n):
        rec = make_record(t)
        if t % 40 == 3:
            rec = type(rec)(**{**rec.__dict__, "events": [
                Event("market_slack", "", "x" * 500), Event("powerflow_not_converged",
                                                            "MV1.101", "no solution")]})
        w.append(rec)
    w.close(complete=True)
    return path


# -- scenario files -------------------------------------------------------------------------

BAD_SCENARIOS = {
    "seed 2^63": TINY + "seed = 9223372036854775808\n",
    "NUL in name": 'name = "a\\u0000b"\n[grid]\nsource = "tiny"\n',
    "escape in name": 'name = "a\\u001b[31mred"\n[grid]\nsource = "tiny"\n',
    "no flexibility": TINY + "".join(f"[flexibility.{k}]\nshare = 0.0\nprice_up = 1.0\n"
                                     f"price_down = 1.0\n" for k in
                                     ASSET_KINDS)
                      + "[flexibility.balancing]\nblocks = 0\n",
    "HV only": 'name = "x"\n[grid]\ncode = "1-HV-mixed--0-sw"\n',
    "EHV only": 'name = "x"\n[grid]\ncode = "1-EHV-mixed--0-sw"\n',
    "LV only": 'name = "x"\n[grid]\ncode = "1-LV-rural1--0-sw"\n',
    "start with zone": 'name = "x"\n[run]\nstart = 2016-01-01T00:00:00+02:00\n',
    "start Z": 'name = "x"\n[run]\nstart = 2016-01-01T00:00:00Z\n',
    "start number": 'name = "x"\n[run]\nstart = 5\n',
    "deep nesting": "a = " + "[" * 1000 + "]" * 1000 + "\n",
    "huge integer": 'name = "x"\n[run]\nseed = ' + "9" * 5000 + "\n",
    "bool sigma": 'name = "x"\n[forecast.pv]\nsigma = true\n',
    "bool steps": 'name = "x"\n[run]\nsteps = true\n',
    "string number": 'name = "x"\n[run]\nsteps = "1e3"\n',
    "margin wider than band": 'name = "x"\n[market]\nvoltage_margin_pu = 0.05\n'
                              '[limits.D]\nvm_min_pu = 0.99\nvm_max_pu = 1.01\n',
    "5 MB name": 'name = "' + "x" * 5_000_000 + '"\n',
    "long unknown key": 'name = "x"\n' + "k" * 100_000 + " = 1\n",
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_validate_rejects_with_one_line(case, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(BAD_SCENARIOS[case], encoding="utf-8")
    code, out = cli("validate", str(path))
    assert_one_line_error(code, out)
    assert "\x1b" not in out and "\x00" not in out


def test_seed_option_range(tmp_path):
    code, out = cli("run", "tiny", "--seed", "99999999999999999999", "--out",
                    str(tmp_path / "x.h5"))
    assert code == 2 and not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "dir"])
def test_validate_reads_only_regular_files(special, tmp_path):
    if special == "fifo":
        path = tmp_path / "s.toml"
        os.mkfifo(path)
    elif special == "dir":
        path = tmp_path
    else:
        path = Path(special)
    res = subprocess.run([*TSODSO, "validate", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert_one_line_error(res.returncode, res.stderr + res.stdout)


def test_scenario_file_size_limit(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\n' + "#" * 1_100_000 + "\n")
    assert_one_line_error(*cli("validate", str(path)))


# -- output paths ---------------------------------------------------------------------------


def test_default_output_stays_in_working_directory(tmp_path):
    (tmp_path / "work").mkdir()
    scen = tmp_path / "work" / "s.toml"
    scen.write_text(TINY.replace('name = "t"', 'name = "../escaped/evil"'))
    code, out = cli("run", str(scen), "--scheme", "none", cwd=tmp_path / "work")
    assert code == 0, out
    assert not (tmp_path / "escaped").exists()
    made = [p.name for p in (tmp_path / "work").glob("*.h5")]
    assert made == ["_escaped_evil-none.h5"]


def test_existing_files_are_not_overwritten(tmp_path):
    scen = tmp_path / "my.toml"
    scen.write_text(TINY)
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes")
    for out in (notes, scen):
        assert_one_line_error(*cli("run", str(scen), "--out", str(out)))
    assert notes.read_text() == "my notes" and scen.read_text() == TINY
    # the scenario file is never the output, even with --overwrite
    assert_one_line_error(*cli("run", str(scen), "--out", str(scen), "--overwrite"))
    assert scen.read_text() == TINY


@pytest.mark.parametrize("out", ["", "/dev/null", "/proc/version", "plain/x.h5", "ro/x.h5",
                                 "x" * 300 + ".h5"])
def test_file_system_problems_are_one_line(out, tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(TINY)
    (tmp_path / "plain").write_text("a file, not a folder")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK) and out.startswith("ro/"):
            pytest.skip("running as a user that may write anywhere")
        code, text = cli("run", str(scen), "--out", out, "--overwrite", cwd=tmp_path)
    finally:
        (tmp_path / "ro").chmod(0o700)
    assert_one_line_error(code, text)


# -- damaged, foreign and shared results files ----------------------------------------------


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_file_fails_fast(fraction, tmp_path):
    path = small_file(tmp_path / "run.h5")
    data = path.read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    target = cut / "run.h5"
    target.write_bytes(data[: int(len(data) * fraction)])
    for args in (["report", str(cut)], ["export", str(target)]):
        res = subprocess.run([*TSODSO, *args], capture_output=True, text=True, timeout=60)
        assert_one_line_error(res.returncode, res.stderr + res.stdout)
        assert "truncated" in res.stderr
    code = (f"from tsodso import results\ntry:\n    results.open({str(target)!r}).kpis\n"
            "except ValueError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "truncated" in res.stdout


def test_foreign_file_is_one_line(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    with pytest.raises(ResultsFileError, match="not an HDF5 file"):
        open_results(path)
    assert_one_line_error(*cli("report", str(path)))


CONCURRENT_WRITER = """
import sys, time
from tests.test_results_writer import DSO_GRIDS, GRIDS, INTERFACES, make_meta, make_record
from tsodso.results.writer import ResultsWriter
w = ResultsWriter(sys.argv[1], make_meta(20), GRIDS, INTERFACES, DSO_GRIDS, block_steps=4)
for t in range(8):
    w.append(make_record(t))
print("writing", flush=True)
sys.stdin.readline()  # hold the file until the test says so
for t in range(8, 20):
    w.append(make_record(t))
w.close(complete=True)
"""


def test_second_writer_is_refused_and_changes_nothing(tmp_path):
    out = tmp_path / "same.h5"
    first = subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(out)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "writing"
        before = out.read_bytes()
        scen = tmp_path / "s.toml"
        scen.write_text(TINY)
        second = subprocess.run([*TSODSO, "run", str(scen), "--out", str(out), "--overwrite"],
                                capture_output=True, text=True, timeout=120)
        assert_one_line_error(second.returncode, second.stderr + second.stdout)
        assert "in use by another process" in second.stderr
        assert out.read_bytes() == before
        # a reader of the live file gets the committed steps at once
        assert read_meta(out)["steps_written"] == 8
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    meta = read_meta(out)
    assert meta["complete"] and meta["steps_written"] == 20 and meta["kpis"]


KILLED_WRITER = """
import os, sys
from tests.test_results_writer import DSO_GRIDS, GRIDS, INTERFACES, make_meta, make_record
from tsodso.results.writer import ResultsWriter
w = ResultsWriter(sys.argv[1], make_meta(40), GRIDS, INTERFACES, DSO_GRIDS, block_steps=8)
for t in range(21):
    w.append(make_record(t))
os.kill(os.getpid(), 9)
"""


def test_killed_file_opens_with_plain_h5py_after_tsodso_touches_it(tmp_path):
    path = tmp_path / "killed.h5"
    res = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=ROOT,
                         timeout=60)
    assert res.returncode == -9
    with pytest.raises(OSError):
        h5py.File(path, "r")
    assert read_meta(path)["steps_written"] == 16  # two blocks of 8 were committed
    with h5py.File(path, "r") as f:
        assert f["time"].shape == (16,)
    code, out = cli("repair", str(path))
    assert code == 0, out
    with h5py.File(path, "r") as f:
        assert f["grids/HV1/vm_pu"].shape[0] == 16 and not f.attrs["complete"]
        assert "social_cost_eur" in f["kpis"].attrs


# -- events, export -------------------------------------------------------------------------


def test_events_table_and_report_count(tmp_path):
    path = small_file(tmp_path / "run.h5")
    ev = load_table(path, "events")
    assert list(ev["kind"][:2]) == ["market_slack", "powerflow_not_converged"]
    assert len(ev["step"]) == 10 and len(ev["detail"][0].encode()) == 160  # cut to width
    html = tmp_path / "r.html"
    assert cli("report", str(path), "--out", str(html))[0] == 0
    page = html.read_text()
    assert 'id="events"' in page and "Markets that ended on their slack" in page


def test_export_neutralises_formulas(tmp_path):
    path = small_file(tmp_path / "run.h5", n=20, scenario='=HYPERLINK("http://x","y")')
    (xlsx,) = export(path, "xlsx")
    wb = openpyxl.load_workbook(xlsx)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert any(c.value == "'" + '=HYPERLINK("http://x","y")' for c in wb["runs"]["C"])
    # units on every column of every sheet, number formats on money
    units = {(r[0], r[1]) for r in wb["units"].iter_rows(min_row=2, values_only=True)}
    for ws in wb:
        if ws.title != "units":
            for c in ws[1]:
                assert (ws.title, c.value) in units, (ws.title, c.value)
    assert wb["costs_centralized"]["B2"].number_format == "#,##0.00"
    assert neutralise("-1") == "'-1" and neutralise(-1.0) == -1.0 and neutralise("a") == "a"
    assert [p.name for p in export(path, "csv")][2:5] == [
        "run_activations_centralized.csv", "run_conflicts_centralized.csv",
        "run_events_centralized.csv"]


def test_every_kpi_has_a_description():
    assert list(KPI_DESCRIPTIONS) == list(KPI_UNITS)
    for name, text in KPI_DESCRIPTIONS.items():
        assert text.endswith(".") and text.count(". ") == 0 and len(text) < 200, name


# -- declared dependencies ------------------------------------------------------------------


def _imported_top_modules() -> set[str]:
    found: set[str] = set()
    for folder in ("core", "coordination", "results", "simulators", "scenarios", "tsodso"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"tsodso", "__future__"}


def test_imports_are_declared_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.split("==")[0].split(">")[0].split("[")[0].strip().lower().replace("_", "-")
                for d in project["dependencies"]}
    provided = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(_imported_top_modules()):
        dists = {d.lower().replace("_", "-") for d in provided.get(module, [])}
        if not dists & declared:
            missing.append(f"{module} (from {sorted(dists) or 'nothing installed'})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    for dep in project["dependencies"]:
        assert "==" in dep, f"unpinned dependency {dep}"


def test_resume_refuses_complete_file(tmp_path):
    path = small_file(tmp_path / "run.h5", n=20)
    code, out = cli("run", "--resume", str(path))
    assert_one_line_error(code, out)
    assert np.isfinite(read_meta(path)["kpis"]["social_cost_eur"])
