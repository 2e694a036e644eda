"""The forecasts and realised values of a run, made block by block.

Markets clear on forecasts (the profiles), grids run on realised values (forecast + seeded
error, `scenarios/forecast.py`). A run of any length holds one block of rows of them: `RunWindow`
reads the profile rows of a block, draws its errors from the run's `ErrorStream` and realises
them; the series the simulators read (`tsodso.core.series.BlockSeries`) take their columns from
it. Every value equals the one a whole-window computation gives (the error stream is one fixed
stream over absolute steps; everything else is per row).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tsodso.core.series import ROWS_PER_BLOCK, BlockSeries
from tsodso.scenarios.forecast import ErrorStream, physical_bounds, realise

__all__ = ["RunWindow"]


class RunWindow:
    """Forecast and realised load/sgen/storage of the coupled net, per block of run steps.

    ``profile(table, col, rows)`` gives the profile values (forecasts) of absolute profile rows
    for every element of the table; ``first_row``/``stride`` map run steps to profile rows and
    ``error_start``/``q_stride`` to the quarter hours of the error stream.
    """

    def __init__(self, profile: Callable[[str, str, np.ndarray], np.ndarray], n_steps: int,
                 first_row: int, stride: int, stream: ErrorStream, error_start: int,
                 q_stride: int, kinds: np.ndarray, rating: np.ndarray, n_load: int,
                 n_sgen: int) -> None:
        self.profile, self.n = profile, int(n_steps)
        self.first_row, self.stride = int(first_row), int(stride)
        self.stream, self.error_start, self.q_stride = stream, int(error_start), int(q_stride)
        self.kinds, self.rating = kinds, rating
        self.nl, self.ns = int(n_load), int(n_sgen)
        self._key: tuple[int, int] | None = None
        self._data: dict[str, np.ndarray] = {}
        self._fc_key: tuple[int, int] | None = None
        self._fc: dict[str, np.ndarray] = {}

    def forecast(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Forecasts (load_p, load_q, sgen_p, sto_p) of run steps lo..hi-1, in the coupled
        net's element order."""
        if self._fc_key != (lo, hi):
            rows = self.first_row + np.arange(lo, hi) * self.stride
            self._fc = {key: self.profile(table, col, rows) for key, (table, col) in
                        {"load_p": ("load", "p_mw"), "load_q": ("load", "q_mvar"),
                         "sgen_p": ("sgen", "p_mw"), "sto_p": ("storage", "p_mw")}.items()}
            self._fc_key = (lo, hi)
        return self._fc

    def block(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """The forecasts and realised values (re_load, re_load_q, re_sgen, re_sto) of run
        steps lo..hi-1, in the coupled net's element order."""
        if self._key == (lo, hi):
            return self._data
        fc = self.forecast(lo, hi)
        q = self.q_stride  # the error stream runs in quarter hours; take every q-th value
        err = self.stream.rows(self.error_start + lo * q, (hi - lo - 1) * q + 1)[::q]
        fc_all = np.hstack([fc["load_p"], fc["sgen_p"], fc["sto_p"]])
        lower, upper = physical_bounds(self.kinds, self.rating, fc_all)
        real = realise(fc_all, err, lower, upper)
        nl, ns = self.nl, self.ns
        re_load = real[:, :nl]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(fc["load_p"]) > 1e-9, re_load / fc["load_p"], 1.0)
        self._data = {**fc, "re_load": re_load, "re_load_q": fc["load_q"] * ratio,
                      "re_sgen": real[:, nl:nl + ns], "re_sto": real[:, nl + ns:]}
        self._key = (lo, hi)
        return self._data

    def series(self, fn: Callable[[dict[str, np.ndarray]], np.ndarray],
               n_cols: int | None, realised: bool = True) -> BlockSeries:
        """A series of the run window computed from each block's data by ``fn`` (from the
        forecasts alone, without drawing errors, where ``realised`` is False)."""
        data = self.block if realised else self.forecast
        return BlockSeries(lambda lo, hi: fn(data(lo, hi)), self.n, n_cols, ROWS_PER_BLOCK)
