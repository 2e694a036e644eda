"""Series made block by block (core/series.py, scenarios/window.py): a run holds one block of
forecasts and realised values, with exactly the numbers of a whole-window computation."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.core.assets import classify
from tsodso.core.series import BlockSeries
from tsodso.scenarios.forecast import (
    DEFAULT_ERRORS,
    ErrorParams,
    ErrorStream,
    forecast_errors,
    physical_bounds,
    realise,
)
from tsodso.scenarios.grids import calendar, error_start
from tsodso.scenarios.load import load
from tsodso.scenarios.world import _window, load_grid, prepare


def test_block_series_indexes_like_the_array() -> None:
    full = np.arange(250 * 3, dtype=float).reshape(250, 3) ** 1.5
    made: list[tuple[int, int]] = []

    def make(lo: int, hi: int) -> np.ndarray:
        made.append((lo, hi))
        return full[lo:hi]

    s = BlockSeries(make, 250, 3, block=96)
    assert s.shape == (250, 3) and len(s) == 250
    for k in range(250):  # walking the steps makes every block once
        assert np.array_equal(s[k], full[k])
    assert made == [(0, 96), (96, 192), (192, 250)]
    assert np.array_equal(s[90:200], full[90:200])  # across blocks
    assert np.array_equal(s[:, [2, 0]], full[:, [2, 0]])
    assert np.array_equal(s[-1, 1:], full[-1, 1:])
    assert np.array_equal(s[[5, 100, 249]], full[[5, 100, 249]])
    assert np.array_equal(np.asarray(s), full)
    with pytest.raises(IndexError):
        s[250]


def test_error_stream_by_block_equals_the_whole_window() -> None:
    rating = np.array([50.0, 0.0, 20.0, 3.0, 7.0])
    kinds = np.array(["wind", "wind", "pv", "load", "storage"])
    params = {**DEFAULT_ERRORS, "storage": ErrorParams(0.02, 0.5, 0.0)}
    whole = forecast_errors(rating, kinds, params, 400, seed=9, start_step=130)
    stream = ErrorStream(rating, kinds, params, 9, end_step=530)
    parts = [stream.rows(130 + lo, min(lo + 96, 400) - lo) for lo in range(0, 400, 96)]
    assert np.array_equal(np.vstack(parts), whole)  # bit for bit
    with pytest.raises(ValueError, match="drawn up to 530"):
        stream.rows(500, 31)


@pytest.mark.parametrize("step_s", [900, 1800])
def test_realised_values_equal_the_whole_window_computation(step_s: int) -> None:
    """The series of a 250-step run (three blocks) against forecasts, errors and realised
    values computed at once for the whole window, as a run did before."""
    sc = load("tiny", {"run.steps": 250, "run.step_s": step_s, "run.seed": 4})
    ctx = prepare(sc, "none")
    net, profiles = load_grid(sc)
    cal = calendar(sc)
    rows = cal.first_row + np.arange(250) * cal.stride
    fc_load = _window(profiles, "load", "p_mw", net.load.index, rows, net.load.p_mw.to_numpy())
    fc_sgen = _window(profiles, "sgen", "p_mw", net.sgen.index, rows, net.sgen.p_mw.to_numpy())
    fc_sto = _window(profiles, "storage", "p_mw", net.storage.index, rows,
                     net.storage.p_mw.to_numpy())
    ws = ctx.portfolio.grids
    load_kind = classify("load", net.load.profile if "profile" in net.load
                         else [None] * len(net.load))
    all_kinds = np.r_[load_kind, classify("sgen", net.sgen.type),
                      classify("storage", [None] * len(net.storage))]
    rating = np.r_[np.abs(net.load.p_mw.to_numpy(float)), net.sgen.p_mw.to_numpy(float),
                   np.abs(net.storage.max_p_mw.fillna(net.storage.p_mw.abs()).to_numpy(float))]
    params = {k: ErrorParams(**v) for k, v in sc.forecast.model_dump().items()}
    q = step_s // 900
    err = forecast_errors(rating, all_kinds, params, 249 * q + 1, 4,
                          start_step=error_start(sc))[::q]
    fc_all = np.hstack([fc_load, fc_sgen, fc_sto])
    real = realise(fc_all, err, *physical_bounds(all_kinds, rating, fc_all))
    nl, ns = len(net.load), len(net.sgen)
    for level in ("T", "D"):
        rt = ctx.levels[level]
        lnet = rt.model.net
        lpos = net.load.index.get_indexer(lnet.load.index)
        spos = net.sgen.index.get_indexer(lnet.sgen.index)
        ok = lpos >= 0
        assert np.array_equal(np.asarray(rt.re_load_p)[:, ok], real[:, :nl][:, lpos[ok]])
        assert np.array_equal(np.asarray(rt.re_sgen_p), real[:, nl:nl + ns][:, spos])
        assert np.all(np.asarray(rt.re_load_p)[:, ~ok] == 0.0)  # the T net's interface loads
    brp = np.asarray(ctx.market.brp_imbalance["BRP:res"])
    assert np.array_equal(brp, (real[:, nl:nl + ns] - fc_sgen).sum(axis=1))
    # the providers' forecasts are the profiles of the window
    d_sgen = ctx.levels["D"].model.net.sgen.index
    first = next(g for g in ws.values() if g.level == "D" and g.fc_sgen.shape[1])
    cols = net.sgen.index.get_indexer(d_sgen[ctx.levels["D"].grids[first.name].sgen])
    assert np.array_equal(np.asarray(first.fc_sgen), fc_sgen[:, cols])
