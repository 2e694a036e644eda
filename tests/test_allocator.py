"""glibc's mmap threshold fixed for a run: a large block freed and asked for again gets its own
mapping (given back to the OS when freed) instead of a place in the heap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# In a fresh interpreter: free a 3 MiB array, ask for another, and print the /proc/self/maps
# name of the mapping that holds it ("[heap]" for the brk heap, "" for an anonymous mapping).
PROBE = """
import sys
import numpy as np
from tsodso.allocator import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
elif sys.argv[1] == "user":  # the user's own glibc setting (read at start-up) is kept
    assert not fix_mmap_threshold()
a = np.ones(3 << 17)  # 3 MiB of float64
del a
b = np.ones(3 << 17)
addr = b.ctypes.data
for line in open("/proc/self/maps"):
    parts = line.split()
    lo, hi = (int(v, 16) for v in parts[0].split("-"))
    if lo <= addr < hi:
        print(parts[5] if len(parts) > 5 else "")
        break
"""


def _where(mode: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env=env)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc on Linux")
def test_a_large_block_freed_and_asked_again_gets_its_own_mapping() -> None:
    # glibc's default raises its threshold to the block freed: the second one is in the heap
    assert _where("default") == "[heap]"
    assert _where("fixed") == ""
    # a user's glibc threshold above the block's size keeps it in the heap, and is not replaced
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(8 << 20))
    assert _where("user", env) == "[heap]"
