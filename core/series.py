"""Time series of a run made block by block, so a run of any length holds only a block of rows.

A `BlockSeries` looks like the (steps x elements) array it stands for: ``s[k]`` is the row of
step ``k``, ``s[lo:hi]`` and ``s[:, cols]`` work as for a numpy array, ``s.shape`` is the whole
window's. The rows are made by a function of a block of steps (``make(lo, hi)``) when a step of
that block is first asked for; the last block made is kept, so a run that walks through its
steps makes every block once. ``np.asarray(s)`` builds the whole window (for tests and small
runs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["ROWS_PER_BLOCK", "BlockSeries", "row_blocks"]

ROWS_PER_BLOCK = 96
"""Steps per block (one day of quarter hours), as the results file's blocks."""


class BlockSeries:
    """A (n_rows, n_cols) float series (1-D of n_rows where ``n_cols`` is None) whose rows are
    made block by block by ``make(lo, hi)`` (rows lo..hi-1) and cached one block at a time."""

    __slots__ = ("_make", "_n", "_cols", "_block", "_cached_b", "_cached")

    def __init__(self, make: Callable[[int, int], np.ndarray], n_rows: int,
                 n_cols: int | None, block: int = ROWS_PER_BLOCK) -> None:
        self._make = make
        self._n, self._cols, self._block = int(n_rows), n_cols, int(block)
        self._cached_b = -1
        self._cached: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n,) if self._cols is None else (self._n, self._cols)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    dtype = np.dtype(float)

    def __len__(self) -> int:
        return self._n

    def block(self, b: int) -> np.ndarray:
        """Rows of block ``b`` (made now unless it is the block made last)."""
        if b != self._cached_b:
            lo = b * self._block
            self._cached = np.asarray(self._make(lo, min(lo + self._block, self._n)), dtype=float)
            self._cached_b = b
        return self._cached

    def _row(self, k: int) -> np.ndarray:
        if k < 0:
            k += self._n
        if not 0 <= k < self._n:
            raise IndexError(f"step {k} outside the run window of {self._n} steps")
        return self.block(k // self._block)[k % self._block]

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        idx = np.where(idx < 0, idx + self._n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise IndexError(f"steps outside the run window of {self._n} steps")
        out = np.empty((len(idx), *self.shape[1:]))
        blocks = idx // self._block
        for b in np.unique(blocks):  # each block made once, in order
            sel = blocks == b
            out[sel] = self.block(int(b))[idx[sel] - b * self._block]
        return out

    def __getitem__(self, key):
        if type(key) is int and 0 <= key < self._n:  # the common case: one step's row
            b, r = divmod(key, self._block)
            return (self._cached if b == self._cached_b else self.block(b))[r]
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            row = self._row(int(key))
            return row[rest] if rest else row
        if isinstance(key, slice):
            lo, hi, step = key.indices(self._n)
            b = lo // self._block
            if step == 1 and hi > lo and (hi - 1) // self._block == b:  # one block: a view
                part = self.block(b)[lo - b * self._block:hi - b * self._block]
            else:
                part = self._rows(np.arange(lo, hi, step))
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            part = self._rows(idx.astype(np.int64))
        return part[(slice(None), *rest)] if rest else part

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._rows(np.arange(self._n))
        return out if dtype is None else out.astype(dtype)


def row_blocks(series, size: int = ROWS_PER_BLOCK):
    """(lo, hi) ranges of ``size`` rows covering a series (a `BlockSeries` or an array)."""
    n = len(series)
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]
