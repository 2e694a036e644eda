"""Seeded forecast-error model: markets clear on forecasts, grids run on realised values.

The forecast of an asset is its profile value (SimBench or built-in); the realised value is
``forecast + error``, clipped to the asset's physical range. Per asset ``i`` of kind ``k``::

    error_i(t) = rating_i * sigma_k * (sqrt(common_k) * c_k(t) + sqrt(1 - common_k) * e_i(t))

``c_k`` (one per kind: wind farms err together) and ``e_i`` (one per asset) are independent
stationary AR(1) processes with unit variance and lag-1 autocorrelation ``rho_k``, so the error
has standard deviation ``rating * sigma``, autocorrelation ``rho`` and a correlation of ``common``
between two assets of one kind.

Determinism: the random numbers depend only on ``seed``, the number of assets and the sorted set
of kinds, never on dict order, on ``params`` or on the process. The error stream is one fixed
stream over absolute steps: ``forecast_errors(..., n, seed, start_step=s)`` equals rows
``s .. s+n-1`` of a run that starts at step 0, so a day simulated alone sees the same errors as
inside a year run, and ``start_step`` selects a different (shifted) part of the stream. To make
that cheap for any ``start_step`` the processes are built in blocks of ``BLOCK`` steps: the
states at block starts form an exact AR(1) chain with coefficient ``rho**BLOCK`` (one draw per
block), and each block is filled with an AR(1) bridge between its two end states (exact Gaussian
conditioning), drawn from a generator keyed by the block number. The result is exactly a
stationary AR(1) process; the cost of a call grows with ``n_steps``, not with ``start_step``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence
from tsodso.core.assets import KINDS as ASSET_DEFS
from tsodso.core.assets import classify
from tsodso.core.vocabulary import RES_KINDS

__all__ = [
    "BLOCK",
    "DEFAULT_ERRORS",
    "ErrorParams",
    "ErrorStream",
    "LOAD_INTRADAY",
    "OTHER_RES_INTRADAY",
    "PV_INTRADAY",
    "STORAGE_INTRADAY",
    "WIND_INTRADAY",
    "asset_kind_sgen",
    "forecast_errors",
    "physical_bounds",
    "realise",
]

BLOCK = 96
"""Steps per random-number block (one day of quarter-hours); part of the stream definition."""

_RES_KINDS = RES_KINDS


@dataclass(frozen=True)
class ErrorParams:
    """Forecast-error parameters of one asset kind."""

    sigma: float
    """Standard deviation of the error as a fraction of the asset's rating (RES: installed
    power; load: its peak; storage: usually 0)."""
    rho: float
    """AR(1) autocorrelation from one step to the next, 0 <= rho < 1."""
    common: float
    """Share of the error variance common to all assets of the kind, 0..1."""

    def __post_init__(self) -> None:
        if not np.isfinite(self.sigma) or self.sigma < 0.0:
            raise ValueError(f"sigma must be finite and >= 0, got {self.sigma}")
        if not 0.0 <= self.rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {self.rho}")
        if not 0.0 <= self.common <= 1.0:
            raise ValueError(f"common must be in [0, 1], got {self.common}")


DEFAULT_ERRORS: dict[str, ErrorParams] = {
    k.name: ErrorParams(*k.error) for k in ASSET_DEFS}
"""Intraday (15 min to 1 h ahead) defaults per asset kind, with their sources in
`tsodso.core.assets`; "balancing" (the TSO's offer ladder) has no forecast error."""
DEFAULT_ERRORS["balancing"] = ErrorParams(0.0, 0.0, 0.0)
WIND_INTRADAY = DEFAULT_ERRORS["wind"]
PV_INTRADAY = DEFAULT_ERRORS["pv"]
OTHER_RES_INTRADAY = DEFAULT_ERRORS["other_res"]
LOAD_INTRADAY = DEFAULT_ERRORS["load"]
STORAGE_INTRADAY = DEFAULT_ERRORS["storage"]


def asset_kind_sgen(sgen_type: str) -> str:
    """Asset kind of a SimBench sgen ``type`` (see `tsodso.core.assets`): Wind/Wind_MV ->
    "wind"; PV_MV, lv_RES (rooftop PV) -> "pv"; everything else -> "other_res"."""
    return str(classify("sgen", [sgen_type])[0])


def forecast_errors(rating: np.ndarray, kinds: np.ndarray, params: Mapping[str, ErrorParams],
                    n_steps: int, seed: int, start_step: int = 0) -> np.ndarray:
    """(n_steps, n_assets) MW errors for absolute steps ``start_step .. start_step+n_steps-1``;
    exactly 0 where sigma == 0 (or rating == 0); same seed -> identical array."""
    if int(n_steps) != n_steps or n_steps < 0 or int(start_step) != start_step or start_step < 0:
        raise ValueError("n_steps and start_step must be non-negative integers")
    stream = ErrorStream(rating, kinds, params, seed, end_step=int(start_step) + int(n_steps))
    return stream.rows(int(start_step), int(n_steps))


class ErrorStream:
    """The error stream of a set of assets, drawn window by window: ``rows(s, n)`` equals
    ``forecast_errors(..., n, seed, start_step=s)`` bit for bit, so a run can draw its errors
    block by block and hold only the rows it is simulating. The block-start skeleton up to
    ``end_step`` is drawn once (one row per ``BLOCK`` steps)."""

    def __init__(self, rating: np.ndarray, kinds: np.ndarray,
                 params: Mapping[str, ErrorParams], seed: int, end_step: int) -> None:
        rating = np.asarray(rating, dtype=float)
        kind_list = [str(k) for k in np.asarray(kinds, dtype=object).reshape(-1)]
        if rating.ndim != 1 or len(kind_list) != rating.shape[0]:
            raise ValueError("rating and kinds must be 1-D of equal length")
        if not np.all(np.isfinite(rating)) or np.any(rating < 0.0):
            raise ValueError("ratings must be finite and >= 0")
        if int(seed) != seed or seed < 0:
            raise ValueError("seed must be a non-negative integer")
        self.seed, self.end_step = int(seed), max(int(end_step), 0)
        kinds_sorted = sorted(set(kind_list))
        missing = [k for k in kinds_sorted if k not in params]
        if missing:
            raise ValueError(f"no ErrorParams for kinds {missing}")

        n_assets, n_kinds = rating.shape[0], len(kinds_sorted)
        self.n_assets, self.n_series = n_assets, n_kinds + n_assets
        kind_pos = {k: j for j, k in enumerate(kinds_sorted)}
        kind_idx = np.array([kind_pos[k] for k in kind_list], dtype=np.int64)
        sigma = np.array([params[k].sigma for k in kinds_sorted])[kind_idx]
        common = np.array([params[k].common for k in kinds_sorted])[kind_idx]
        rho_kind = np.array([params[k].rho for k in kinds_sorted])
        active = (sigma > 0.0) & (rating > 0.0)
        self.any_active = bool(active.any())
        if not self.any_active:
            return

        # Series layout (fixed by n_kinds and n_assets only): [common per sorted kind] + [assets].
        need_common = np.zeros(n_kinds, dtype=bool)
        need_common[np.unique(kind_idx[active & (common > 0.0)])] = True
        need_asset = active & (common < 1.0)
        self.cols = np.concatenate([np.flatnonzero(need_common),
                                    n_kinds + np.flatnonzero(need_asset)])
        self.rho = np.concatenate([rho_kind, rho_kind[kind_idx]])[self.cols]

        # Combine per block: own parts are the trailing simulated columns in asset order; the
        # common part of an asset is its kind's column (a zero column where it has none).
        self.act = np.flatnonzero(active)
        self.n_common = int(need_common.sum())
        c_act = common[self.act]
        scale = rating[self.act] * sigma[self.act]
        self.own_in_act = c_act < 1.0
        self.w_own = scale[self.own_in_act] * np.sqrt(1.0 - c_act[self.own_in_act])
        col_of_kind = np.full(n_kinds, self.n_common, dtype=np.int64)
        col_of_kind[need_common] = np.arange(self.n_common)
        self.src_common = np.where(c_act > 0.0, col_of_kind[kind_idx[self.act]], self.n_common)
        self.w_common = scale * np.sqrt(c_act)
        self.all_own = bool(self.own_in_act.all())
        self.all_active = len(self.act) == n_assets
        self.skel = _skeleton(self.seed, self.n_series, self.cols, self.rho,
                              max(self.end_step - 1, 0) // BLOCK)

    def rows(self, start_step: int, n_steps: int) -> np.ndarray:
        """(n_steps, n_assets) MW errors for absolute steps ``start_step ..`` (within
        ``end_step``)."""
        out = np.zeros((n_steps, self.n_assets))
        if n_steps == 0 or not self.any_active:
            return out
        if start_step + n_steps > self.end_step:
            raise ValueError(f"steps up to {start_step + n_steps} asked of a stream drawn up "
                             f"to {self.end_step}")
        n_common, act = self.n_common, self.act
        for lo, hi, x in _ar1_window(self.seed, self.n_series, self.cols, self.rho, self.skel,
                                     start_step, n_steps):
            part = out[lo:hi] if self.all_active else np.zeros((hi - lo, len(act)))
            if self.all_own:
                np.multiply(x[:, n_common:], self.w_own, out=part)
            else:
                part[:, self.own_in_act] = x[:, n_common:] * self.w_own
            if n_common:
                shared = np.concatenate([x[:, :n_common], np.zeros((hi - lo, 1))], axis=1)
                part += np.take(shared, self.src_common, axis=1) * self.w_common
            if not self.all_active:
                out[lo:hi, act] = part
        return out


def _skeleton(seed: int, n_series: int, cols: np.ndarray, rho: np.ndarray,
              b_last: int) -> np.ndarray:
    """States at block starts 0 .. b_last+1: an AR(1) chain with coefficient rho**BLOCK. The
    draws of a shorter skeleton are the first rows of a longer one's, so any window of the
    stream sees the same states."""
    z = _generator(seed, 0).standard_normal((b_last + 2, n_series))[:, cols]
    a = rho**BLOCK
    b_a = np.sqrt(1.0 - a * a)
    skel = np.empty_like(z)
    skel[0] = z[0]
    for b in range(1, b_last + 2):
        skel[b] = a * skel[b - 1] + b_a * z[b]
    return skel


def _ar1_window(seed: int, n_series: int, cols: np.ndarray, rho: np.ndarray, skel: np.ndarray,
                start_step: int, n_steps: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Unit-variance stationary AR(1) paths of the selected series ``cols`` (coefficients
    ``rho``, block-start states ``skel``) over absolute steps ``start_step ..
    start_step+n_steps-1``, yielded block by block as (first row, end row, values) relative to
    ``start_step``; the values are a buffer that the next block overwrites."""
    b_first = start_step // BLOCK
    b_last = (start_step + n_steps - 1) // BLOCK
    a = rho**BLOCK
    c = np.sqrt(1.0 - rho * rho)
    t = np.arange(BLOCK)[:, None]
    # Bridge weights: x_t = y_t + k_t (s_end - y_B) conditions a free path y on the end state.
    gain = rho[None, :] ** (BLOCK - t) * (1.0 - rho[None, :] ** (2 * t)) / (1.0 - a * a)
    y = np.empty((BLOCK + 1, len(cols)))
    for b in range(b_first, b_last + 1):
        ce = c * _generator(seed, 1, b).standard_normal((BLOCK, n_series))[:, cols]
        y[0] = skel[b]
        for k in range(1, BLOCK + 1):  # free path from the block-start state
            np.multiply(rho, y[k - 1], out=y[k])
            y[k] += ce[k - 1]
        y[:BLOCK] += gain * (skel[b + 1] - y[BLOCK])
        lo = max(start_step, b * BLOCK)
        hi = min(start_step + n_steps, (b + 1) * BLOCK)
        yield lo - start_step, hi - start_step, y[lo - b * BLOCK:hi - b * BLOCK]


def _generator(seed: int, *key: int) -> Generator:
    """PCG64 generator of an independent sub-stream of ``seed`` (numpy SeedSequence spawn key)."""
    return Generator(PCG64(SeedSequence(seed, spawn_key=key)))


def realise(forecast: np.ndarray, errors: np.ndarray, lower: np.ndarray,
            upper: np.ndarray) -> np.ndarray:
    """forecast + error clipped to the asset's physical range ``[lower, upper]`` (broadcast
    against the forecast; RES: [0, rating]; loads keep their sign, see :func:`physical_bounds`).
    The range is widened to include the forecast itself, so a zero error returns the forecast
    unchanged even where the profile sits slightly outside the range (SimBench has -0.001 MW)."""
    forecast = np.asarray(forecast, dtype=float)
    lo = np.minimum(np.asarray(lower, dtype=float), forecast)
    hi = np.maximum(np.asarray(upper, dtype=float), forecast)
    return np.clip(forecast + np.asarray(errors, dtype=float), lo, hi)


def physical_bounds(kinds: Sequence[str] | np.ndarray, rating: np.ndarray,
                    forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the forecast's shape for :func:`realise`: RES in [0, rating], loads keep
    the sign of their forecast, storage in [-rating, rating], other kinds unbounded."""
    forecast = np.asarray(forecast, dtype=float)
    rating = np.asarray(rating, dtype=float)
    kind_arr = np.array([str(k) for k in np.asarray(kinds, dtype=object).reshape(-1)])
    lower = np.full(forecast.shape, -np.inf)
    upper = np.full(forecast.shape, np.inf)
    res = np.isin(kind_arr, _RES_KINDS)
    lower[..., res] = 0.0
    upper[..., res] = np.broadcast_to(rating[res], upper[..., res].shape)
    sto = kind_arr == "storage"
    lower[..., sto] = np.broadcast_to(-rating[sto], lower[..., sto].shape)
    upper[..., sto] = np.broadcast_to(rating[sto], upper[..., sto].shape)
    load = kind_arr == "load"
    pos = forecast[..., load] >= 0.0
    lower[..., load] = np.where(pos, 0.0, -np.inf)
    upper[..., load] = np.where(pos, np.inf, 0.0)
    return lower, upper
