"""Interruptions of real runs (issue 13): SIGKILL then ``run --resume`` gives datasets
byte-identical to an uninterrupted run; SIGTERM ends a run as Ctrl-C does (exit 143, one line,
file finished with complete = false)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from tsodso.results.read import open_results, steps_written

TSODSO = [sys.executable, "-m", "tsodso.cli"]
STEPS = 400  # several blocks of 96 steps: the stop (after the first block) comes mid-run
SCENARIO = f"""name = "resume"
[grid]
source = "tiny"
[run]
start = 2016-06-15T00:00:00
steps = {STEPS}
seed = 3
"""


def datasets(path: Path) -> dict[str, bytes]:
    """Every dataset of a file as bytes (variable-length strings as their text)."""
    out: dict[str, bytes] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                out[name] = (repr(data.tolist()).encode() if obj.dtype.kind == "O"
                             else data.tobytes())
        f.visititems(visit)
    return out


def start_and_stop(scen: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a run and send ``sig`` once a block of steps is in the file."""
    proc = subprocess.Popen([*TSODSO, "run", str(scen), "--scheme", "centralized", "--out",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                with open_results(out) as f:
                    if steps_written(f) >= 96:
                        break
            except (OSError, ValueError):
                continue
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("resume")
    scen = folder / "s.toml"
    scen.write_text(SCENARIO)
    out = folder / "full.h5"
    subprocess.run([*TSODSO, "run", str(scen), "--scheme", "centralized", "--out", str(out)],
                   check=True, capture_output=True, timeout=300)
    return scen, out


def test_sigkill_then_resume_is_byte_identical(full, tmp_path):
    scen, reference = full
    out = tmp_path / "killed.h5"
    res = start_and_stop(scen, out, signal.SIGKILL)
    assert res.returncode == -signal.SIGKILL
    with pytest.raises(OSError):  # flagged as open for writing until tsodso touches it
        h5py.File(out, "r")
    res = subprocess.run([*TSODSO, "run", "--resume", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert datasets(out) == datasets(reference)
    with h5py.File(out, "r") as f, h5py.File(reference, "r") as g:
        assert f.attrs["complete"] and dict(f["kpis"].attrs) == dict(g["kpis"].attrs)


def test_sigterm_finishes_the_file(full, tmp_path):
    scen, _ = full
    out = tmp_path / "term.h5"
    res = start_and_stop(scen, out, signal.SIGTERM)
    assert res.returncode == 143, res.stderr
    # progress lines of the set-up may come first; the error is one line, no traceback
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: terminated (SIGTERM)")
    assert "Traceback" not in res.stderr
    with h5py.File(out, "r") as f:  # closed properly: plain h5py opens it
        assert not f.attrs["complete"] and f["time"].shape[0] >= 96
        assert "social_cost_eur" in f["kpis"].attrs


def test_second_resume_of_a_finished_run_is_refused(full):
    _, reference = full
    res = subprocess.run([*TSODSO, "run", "--resume", str(reference)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "complete" in res.stderr
    assert os.path.getsize(reference) > 0
