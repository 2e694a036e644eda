"""Tests of the seeded forecast-error model (scenarios/forecast.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from tsodso.scenarios.forecast import (
    BLOCK,
    DEFAULT_ERRORS,
    ErrorParams,
    asset_kind_sgen,
    forecast_errors,
    physical_bounds,
    realise,
)

N_YEAR = 35_136


def _lag1(x: np.ndarray) -> np.ndarray:
    """Empirical lag-1 autocorrelation per column."""
    x = x - x.mean(axis=0)
    return (x[1:] * x[:-1]).mean(axis=0) / x.var(axis=0)


def test_zero_sigma_gives_exact_zero() -> None:
    params = {"wind": ErrorParams(0.05, 0.95, 0.6), "storage": ErrorParams(0.0, 0.5, 0.3)}
    kinds = np.array(["wind", "storage", "wind", "storage"])
    rating = np.array([50.0, 10.0, 20.0, 5.0])
    err = forecast_errors(rating, kinds, params, 500, seed=3)
    assert err.shape == (500, 4)
    assert np.all(err[:, [1, 3]] == 0.0)
    assert not np.signbit(err[:, [1, 3]]).any()  # +0.0, not -0.0
    assert np.all(err[:, [0, 2]] != 0.0)
    # A rating of 0 also gives exactly 0 whatever the sigma.
    err0 = forecast_errors(np.array([0.0, 3.0]), np.array(["wind", "wind"]), params, 50, seed=3)
    assert np.all(err0[:, 0] == 0.0)


def test_same_seed_identical_other_seed_different() -> None:
    kinds = np.array(["wind", "pv", "load", "pv"])
    rating = np.array([30.0, 2.0, 5.0, 1.0])
    a = forecast_errors(rating, kinds, DEFAULT_ERRORS, 300, seed=11)
    b = forecast_errors(rating, kinds, DEFAULT_ERRORS, 300, seed=11)
    c = forecast_errors(rating, kinds, DEFAULT_ERRORS, 300, seed=12)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_dict_order_does_not_matter() -> None:
    kinds = np.array(["pv", "wind", "load", "other_res"])
    rating = np.array([2.0, 30.0, 5.0, 1.0])
    forward = dict(DEFAULT_ERRORS)
    backward = dict(reversed(list(DEFAULT_ERRORS.items())))
    assert list(forward) != list(backward)
    a = forecast_errors(rating, kinds, forward, 200, seed=5)
    b = forecast_errors(rating, kinds, backward, 200, seed=5)
    assert np.array_equal(a, b)


def test_std_autocorrelation_and_common_share() -> None:
    # Two wind farms and two PV plants over a year: hand-set targets.
    params = {"wind": ErrorParams(0.05, 0.95, 0.6), "pv": ErrorParams(0.04, 0.8, 0.3)}
    kinds = np.array(["wind", "wind", "pv", "pv"])
    rating = np.array([50.0, 20.0, 10.0, 4.0])
    err = forecast_errors(rating, kinds, params, N_YEAR, seed=2024)
    target_std = np.array([50 * 0.05, 20 * 0.05, 10 * 0.04, 4 * 0.04])  # 2.5, 1.0, 0.4, 0.16 MW
    assert np.all(np.abs(err.std(axis=0) / target_std - 1.0) < 0.10)
    assert np.all(np.abs(np.abs(err.mean(axis=0)) / target_std) < 0.15)
    rho = _lag1(err)
    assert rho[:2] == pytest.approx([0.95, 0.95], abs=0.05)
    assert rho[2:] == pytest.approx([0.8, 0.8], abs=0.05)
    corr = np.corrcoef(err.T)
    assert corr[0, 1] == pytest.approx(0.6, abs=0.1)
    assert corr[2, 3] == pytest.approx(0.3, abs=0.1)
    assert abs(corr[0, 2]) < 0.1  # different kinds are independent


def test_common_one_and_zero() -> None:
    params = {"wind": ErrorParams(0.05, 0.9, 1.0), "pv": ErrorParams(0.04, 0.9, 0.0)}
    kinds = np.array(["wind", "wind", "pv", "pv"])
    rating = np.array([40.0, 10.0, 3.0, 3.0])
    err = forecast_errors(rating, kinds, params, 5000, seed=9)
    # common == 1: both farms follow one process, scaled by their ratings (40 vs 10).
    np.testing.assert_allclose(err[:, 0], 4.0 * err[:, 1], rtol=1e-12)
    assert abs(np.corrcoef(err[:, 2], err[:, 3])[0, 1]) < 0.1


def test_stationary_across_block_boundaries() -> None:
    # Many independent unit assets over three blocks: at every position (inside a block and at
    # block joints) the variance is 1 and the lag-1 correlation is rho.
    rho = 0.9
    n_assets = 4000
    err = forecast_errors(np.ones(n_assets), np.array(["x"] * n_assets),
                          {"x": ErrorParams(1.0, rho, 0.0)}, 3 * BLOCK, seed=1)
    for t in (0, 1, BLOCK // 2, BLOCK - 1, BLOCK, 2 * BLOCK - 1, 2 * BLOCK):
        assert err[t].var() == pytest.approx(1.0, abs=0.1)
    for t in (0, BLOCK // 2, BLOCK - 1, 2 * BLOCK - 1):  # BLOCK-1 -> BLOCK crosses a joint
        assert np.corrcoef(err[t], err[t + 1])[0, 1] == pytest.approx(rho, abs=0.02)
    # Ten steps apart the AR(1) correlation is rho**10 = 0.349, also across a joint.
    t = BLOCK - 5
    assert np.corrcoef(err[t], err[t + 10])[0, 1] == pytest.approx(rho**10, abs=0.06)


def test_start_step_stream_is_deterministic_and_consistent() -> None:
    kinds = np.array(["wind", "pv", "load"])
    rating = np.array([60.0, 5.0, 8.0])
    a = forecast_errors(rating, kinds, DEFAULT_ERRORS, 100, seed=7, start_step=0)
    b = forecast_errors(rating, kinds, DEFAULT_ERRORS, 100, seed=7, start_step=250)
    b2 = forecast_errors(rating, kinds, DEFAULT_ERRORS, 100, seed=7, start_step=250)
    assert not np.allclose(a, b)
    assert np.array_equal(b, b2)
    # One stream over absolute steps: a window equals the same rows of a longer run.
    full = forecast_errors(rating, kinds, DEFAULT_ERRORS, 400, seed=7)
    np.testing.assert_array_equal(full[250:350], b)
    np.testing.assert_array_equal(full[:100], a)
    late = forecast_errors(rating, kinds, DEFAULT_ERRORS, 3, seed=7, start_step=N_YEAR - 2)
    assert late.shape == (3, 3) and np.all(np.isfinite(late))


def test_deterministic_across_processes() -> None:
    code = (
        "import hashlib, numpy as np\n"
        "from scenarios.forecast import DEFAULT_ERRORS, forecast_errors\n"
        "e = forecast_errors(np.array([60.0, 5.0, 8.0, 1.0]),"
        " np.array(['wind', 'pv', 'load', 'storage']), DEFAULT_ERRORS, 500, 42, 1000)\n"
        "print(hashlib.sha256(e.tobytes()).hexdigest())\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    here = forecast_errors(np.array([60.0, 5.0, 8.0, 1.0]),
                           np.array(["wind", "pv", "load", "storage"]), DEFAULT_ERRORS, 500, 42,
                           1000)
    assert res.stdout.strip() == hashlib.sha256(here.tobytes()).hexdigest()


def test_realise_clips_res_to_rating_and_keeps_load_sign() -> None:
    kinds = np.array(["wind", "pv", "load", "load", "storage"])
    rating = np.array([10.0, 2.0, 3.0, 1.0, 1.0])
    params = {"wind": ErrorParams(0.5, 0.5, 0.0), "pv": ErrorParams(0.5, 0.5, 0.0),
              "load": ErrorParams(0.5, 0.5, 0.0), "storage": ErrorParams(0.0, 0.0, 0.0)}
    n = 2000
    forecast = np.column_stack([
        np.linspace(0.0, 10.0, n), np.linspace(0.0, 2.0, n), np.full(n, 0.3), np.full(n, -0.2),
        np.full(n, 0.5),
    ])
    err = forecast_errors(rating, kinds, params, n, seed=4)
    lower, upper = physical_bounds(kinds, rating, forecast)
    real = realise(forecast, err, lower, upper)
    assert np.all(real[:, :2] >= 0.0) and np.all(real[:, :2] <= rating[:2])
    assert real[:, 0].min() == 0.0 and real[:, 0].max() == 10.0  # large errors do hit the limits
    assert np.all(real[:, 2] >= 0.0) and np.all(real[:, 3] <= 0.0)
    np.testing.assert_array_equal(real[:, 4], forecast[:, 4])  # zero error: unchanged
    inside = (forecast + err >= lower) & (forecast + err <= upper)
    np.testing.assert_array_equal(real[inside], (forecast + err)[inside])


def test_realise_keeps_forecast_outside_range_when_error_is_zero() -> None:
    # SimBench sgen profiles dip slightly below zero; a zero error must not alter them.
    forecast = np.array([[-0.0014, 5.0]])
    real = realise(forecast, np.zeros((1, 2)), np.array([0.0, 0.0]), np.array([4.0, 4.0]))
    np.testing.assert_array_equal(real, forecast)
    real = realise(forecast, np.array([[-1.0, 1.0]]), np.array([0.0, 0.0]), np.array([4.0, 4.0]))
    np.testing.assert_array_equal(real, forecast)


def test_asset_kind_sgen_maps_simbench_types() -> None:
    assert asset_kind_sgen("Wind") == "wind"
    assert asset_kind_sgen("Wind_MV") == "wind"
    assert asset_kind_sgen("PV_MV") == "pv"
    assert asset_kind_sgen("lv_RES") == "pv"
    for t in ("Biomass_MV", "Hydro_MV", "mv_rural", "mv_semiurb", "mv_urban", "mv_comm",
              "mv_add1"):
        assert asset_kind_sgen(t) == "other_res"


def test_defaults_and_validation() -> None:
    assert set(DEFAULT_ERRORS) >= {"wind", "pv", "other_res", "load", "storage"}
    assert 0.04 <= DEFAULT_ERRORS["wind"].sigma <= 0.06
    assert 0.03 <= DEFAULT_ERRORS["pv"].sigma <= 0.05
    assert DEFAULT_ERRORS["storage"].sigma == 0.0
    for bad in ((-0.1, 0.5, 0.5), (0.1, 1.0, 0.5), (0.1, -0.1, 0.5), (0.1, 0.5, 1.5)):
        with pytest.raises(ValueError):
            ErrorParams(*bad)
    with pytest.raises(ValueError, match="no ErrorParams"):
        forecast_errors(np.ones(2), np.array(["wind", "ev"]), DEFAULT_ERRORS, 10, seed=1)
    with pytest.raises(ValueError):
        forecast_errors(np.array([-1.0]), np.array(["wind"]), DEFAULT_ERRORS, 10, seed=1)
    assert forecast_errors(np.ones(2), np.array(["wind", "pv"]), DEFAULT_ERRORS, 0,
                           seed=1).shape == (0, 2)
