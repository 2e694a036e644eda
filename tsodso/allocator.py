"""glibc's malloc, set for long runs: large blocks from their own mappings, given back when freed.

glibc serves blocks above its mmap threshold from fresh mappings that are unmapped when freed,
but by default it raises the threshold to the size of each such block freed (up to 32 MiB).
After a run's set-up has freed its first large arrays, the per-step temporaries of 1-32 MiB
(the D grids' refreshed rows, HiGHS's work arrays, sparse products) come from the heap instead,
and the holes they leave between longer-lived blocks stay resident: in an `integrated` run on
`default`, 150 MiB more after set-up and 83 MiB more at the peak of 2,000 steps (see
docs/performance.md, "Memory of a long market run"). Fixing the threshold keeps blocks of
`MMAP_THRESHOLD` and above in their own mappings. Only where the memory comes from changes,
never a number computed with it.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 2 << 20  # bytes: blocks from this size on get their own mapping
_M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (and the trim threshold with it) at `nbytes` for this
    process and the processes it forks; True if set. Nothing is changed (False) elsewhere
    than glibc on Linux, or where the user set glibc's own ``MALLOC_MMAP_THRESHOLD_``."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, nbytes)) and bool(mallopt(_M_TRIM_THRESHOLD, nbytes))
