"""Run a command (usually `tsodso compare ...`) and watch the runs its processes make: per run
file, the peak resident memory of the process writing it, its CPU time and steps over time,
and the cost per step week by week.

    python benchmarks/watch_runs.py [--every S] -- tsodso compare default --steps 35136 \\
        --start 2016-01-01 --workers 2 --out year

Every S seconds (default 10) it reads /proc of the command's descendants: which `.h5` file
each one holds open (the run it is writing), its resident memory and peak (VmRSS, VmHWM) and
its CPU time; and how many steps that file holds (read in SWMR mode, as the writer allows).
When a process starts a new run file its peak is reset (`/proc/PID/clear_refs`), so a run's
peak is its own plus what its process kept from an earlier run, if it ran one (`compare`
runs each scheme side by side in a fresh process, one after another in its own).
Prints one line per run at the end and writes every sample to WATCH.json beside the command's
output directory (or the working directory). Linux only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py

WEEK = 672


def _children(pid: int) -> list[int]:
    """Every descendant of `pid`."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


def status(pid: int | str, keys: tuple[str, ...] = ("VmRSS", "VmHWM")) -> dict[str, int]:
    """The memory fields `keys` of /proc/PID/status (PID may be "self"), in KiB, in that
    order."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in keys:
            out[key] = int(val.split()[0])
    return {k: out[k] for k in keys}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_file(pid: int) -> str | None:
    """The `.h5` file the process holds open (its current run), if any."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith(".h5"):
            return target
    return None


def _steps(path: str) -> int | None:
    """Steps written to a run file so far (None while it cannot be read)."""
    try:
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            return int(f["time"].shape[0]) if "time" in f else None
    except Exception:  # noqa: BLE001 - a file being created or extended: try next time
        return None


def main(argv: list[str]) -> int:
    every = 10.0
    if argv[:1] == ["--every"]:
        every, argv = float(argv[1]), argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    out_dir = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path(".")
    t0 = time.time()
    proc = subprocess.Popen(argv)
    runs: dict[str, dict] = {}
    current: dict[int, str] = {}
    while proc.poll() is None:
        time.sleep(every)
        for pid in _children(proc.pid):
            try:
                path = _run_file(pid)
                if path is None:
                    continue
                if current.get(pid) != path:  # a new run in this process: its own peak
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
                    current[pid] = path
                st, cpu = status(pid), _cpu_s(pid)
            except OSError:
                continue
            run = runs.setdefault(path, {"pid": pid, "samples": [], "peak_kib": 0})
            run["peak_kib"] = max(run["peak_kib"], st.get("VmHWM", 0))
            run["samples"].append([round(time.time() - t0, 1), cpu, st.get("VmRSS", 0),
                                   _steps(path)])
    wall = time.time() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "WATCH.json").write_text(json.dumps({"argv": argv, "wall_s": wall,
                                                    "runs": runs}))
    print(f"wall time {wall / 60:.1f} min; exit code {proc.returncode}")
    for path, run in sorted(runs.items()):
        s = [x for x in run["samples"] if x[3] is not None]
        line = f"{Path(path).stem:17s} peak {run['peak_kib'] / 1024:6.0f} MiB"
        if len(s) >= 2:
            (ta, ca, _, na), (tb, cb, _, nb) = s[0], s[-1]
            line += (f"  {nb} steps seen; {1e3 * (tb - ta) / max(nb - na, 1):.1f} ms/step wall, "
                     f"{1e3 * (cb - ca) / max(nb - na, 1):.1f} CPU")
            weeks = _weekly(s)
            if len(weeks) >= 2:
                line += (f"; CPU ms/step week 1 {weeks[0]:.1f}, last {weeks[-1]:.1f}, "
                         f"ratio {weeks[-1] / weeks[0]:.3f}")
        print(line)
    return proc.returncode


def _weekly(samples: list) -> list[float]:
    """CPU ms per step in each whole week of steps, from the samples nearest its ends."""
    out = []
    k = 1
    while True:
        # from the first block written on: a sample before it may still be in the set-up
        a = [x for x in samples if 0 < x[3] <= (k - 1) * WEEK]
        b = [x for x in samples if x[3] >= k * WEEK]
        if not b:
            return out
        lo = a[-1] if a else next(x for x in samples if x[3] > 0)
        hi = b[0]
        if hi[3] > lo[3]:
            out.append(1e3 * (hi[1] - lo[1]) / (hi[3] - lo[3]))
        k += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
