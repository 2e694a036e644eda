"""Where a run's memory goes, and what glibc's mmap threshold does to it: one scheme on
`default`, side by side with the threshold as glibc keeps it (dynamic) and fixed.

    python benchmarks/memory_in_run.py [SCHEME] [STEPS] [START] [THRESHOLDS]
    # default: integrated 300 2016-01-15 0,2097152  (0: glibc's dynamic threshold)

Each threshold runs in its own process, two at a time (one per core), so that a pair shares
the machine's load. Each prints, after the set-up and every 500 steps, its CPU seconds, its
anonymous and file-backed resident memory and its peak (VmHWM: both kinds, as `watch_runs.py`
and `bench_month.py` count it); then per threshold the stepping CPU ms/step and the peak, and
their ratios to the first threshold's. The runner fixes the threshold at
`tsodso.allocator.MMAP_THRESHOLD`; for a run with the dynamic one, this script replaces that
call by a no-op. Linux with glibc only.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVERY = 500


def _status() -> dict[str, int]:
    """RssAnon, RssFile and VmHWM of this process, MiB."""
    from benchmarks.watch_runs import status

    return {k: v // 1024 for k, v in status("self", ("RssAnon", "RssFile", "VmHWM")).items()}


def child(scheme: str, steps: int, start: str, threshold: int) -> None:
    """One run in this process; prints one line per stage."""
    from tsodso.scenarios.load import load

    import tsodso.runner as runner
    from tsodso.allocator import fix_mmap_threshold

    runner.fix_mmap_threshold = (lambda: fix_mmap_threshold(threshold)) if threshold \
        else (lambda: False)
    seen = [0]

    def line(tag: str) -> None:
        print(tag, round(time.process_time(), 2), *_status().values(), flush=True)

    class Clock:  # stands in for the progress bar: the runner calls update() once per step
        def __init__(self, *args, **kwargs) -> None:
            line("setup")

        def update(self, n: int = 1) -> None:
            seen[0] += n
            if seen[0] % EVERY == 0:
                line(f"step{seen[0]}")

        def close(self) -> None:
            pass

    runner.tqdm = Clock
    with tempfile.TemporaryDirectory() as d:
        runner.run(load("default", {"run.steps": steps, "run.start": start}), scheme,
                   Path(d) / "run.h5")
    line("end")


def main(argv: list[str]) -> None:
    scheme = argv[0] if argv else "integrated"
    steps = int(argv[1]) if len(argv) > 1 else 300
    start = argv[2] if len(argv) > 2 else "2016-01-15"
    thresholds = [int(t) for t in (argv[3] if len(argv) > 3 else "0,2097152").split(",")]
    print(f"{scheme} on default, {steps} steps from {start}; CPU s, RssAnon, RssFile, VmHWM "
          "(MiB)")
    out: dict[int, list[list[str]]] = {}
    for k in range(0, len(thresholds), 2):
        pair = thresholds[k:k + 2]
        procs = {t: subprocess.Popen(
            [sys.executable, __file__, "--child", scheme, str(steps), start, str(t)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for t in pair}
        for t, p in procs.items():
            text, _ = p.communicate()
            if p.returncode:
                raise SystemExit(f"run with threshold {t} failed (exit {p.returncode})")
            out[t] = [ln.split() for ln in text.splitlines() if ln.strip()]
    ref = None
    for t in thresholds:
        name = "dynamic" if t == 0 else f"{t >> 10} KiB"
        for row in out[t]:
            print(f"  {name:>10}  {row[0]:>9}  {float(row[1]):8.1f}  " + "  ".join(
                f"{int(v):5d}" for v in row[2:]))
        stages = {row[0]: row for row in out[t]}
        ms = 1e3 * (float(stages["end"][1]) - float(stages["setup"][1])) / steps
        peak = int(stages["end"][4])
        ref = ref or (ms, peak)
        print(f"  {name:>10}  stepping {ms:.1f} CPU ms/step ({ms / ref[0]:.3f}), "
              f"peak {peak} MiB ({peak / ref[1]:.3f})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        a = sys.argv[2:]
        child(a[0], int(a[1]), a[2], int(a[3]))
    else:
        main(sys.argv[1:])
