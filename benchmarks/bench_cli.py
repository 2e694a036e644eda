"""How quickly the command line answers: `tsodso --help` and `tsodso validate tiny` against an
empty Python start (`python -c pass`) on the same machine.

    python benchmarks/bench_cli.py [REPEATS]

Prints the median wall time of each command over REPEATS runs (default 5) and its ratio to
`python -c pass`; the target is under 1 s of wall time for both commands.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "tsodso.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "tsodso --help": [*CLI, "--help"],
    "tsodso validate tiny": [*CLI, "validate", "tiny"],
}


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall time of `cmd` in seconds (one warm-up run first)."""
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(repeats: int) -> None:
    base = None
    for name, cmd in COMMANDS.items():
        t = wall(cmd, repeats)
        base = base or t
        print(f"{name:24s} {t:6.3f} s   {t / base:5.1f} x python -c pass")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
