"""Growth per asset kind and level ([growth], scenarios/growth.py): what it scales, what it
leaves alone, how d_stress moves the D factors, and the memory-mapped profiles it wraps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tsodso.scenarios.cache import MappedProfile
from tsodso.scenarios.growth import ScaledProfile, apply_growth, factors
from tsodso.scenarios.load import ScenarioError, load, parse
from tsodso.scenarios.split import bus_grids
from tsodso.scenarios.tiny import build_tiny

TINY = 'name = "g"\n[grid]\nsource = "tiny"\n'


def _tiny(extra: str):
    return parse(TINY + extra, "test")


@pytest.mark.parametrize(("d_stress", "expected"), [(0.0, 1.0), (1.0, 3.0), (1.5, 4.0),
                                                    (2.0, 5.0)])
def test_d_stress_scales_the_added_d_capacity(d_stress, expected):
    sc = _tiny(f"[growth]\nd_stress = {d_stress}\n[growth.pv]\nD = 3.0\nT = 2.0\n")
    fac = factors(sc)
    assert fac[("pv", "D")] == pytest.approx(expected)
    assert fac[("pv", "T")] == 2.0  # T growth is not scaled by d_stress
    assert fac[("wind", "D")] == 1.0


def test_shrinking_d_growth_never_goes_negative():
    sc = _tiny("[growth]\nd_stress = 3.0\n[growth.load]\nD = 0.5\n")
    assert factors(sc)[("load", "D")] == 0.0  # 1 + 3 x (0.5 - 1) = -0.5, clipped


def test_default_growth_returns_the_grid_untouched():
    net, prof = build_tiny()
    before = net.sgen.p_mw.copy()
    out = apply_growth(_tiny(""), net, prof, None)
    assert out is prof
    pd.testing.assert_series_equal(net.sgen.p_mw, before)


def test_growth_scales_ratings_and_profiles_of_the_kind_at_its_level():
    net, prof = build_tiny()
    sgen0, load0 = net.sgen.copy(), net.load.copy()
    sp0, lp0 = prof[("sgen", "p_mw")].copy(), prof[("load", "p_mw")].copy()
    sc = _tiny("[growth]\nd_stress = 0.5\n[growth.pv]\nD = 3.0\n[growth.load]\nT = 1.5\n")
    out = apply_growth(sc, net, prof, None)
    t_name, grid_of = bus_grids(net)
    d_pv = (net.sgen.type.str.startswith("PV") & net.sgen.bus.map(grid_of).ne(t_name)).to_numpy()
    t_load = net.load.bus.map(grid_of).eq(t_name).to_numpy()
    assert d_pv.sum() == 5 and t_load.sum() == 1
    # D PV: factor 1 + 0.5 x (3 - 1) = 2 on rating and profile; the rest unchanged
    np.testing.assert_allclose(net.sgen.p_mw[d_pv], 2.0 * sgen0.p_mw[d_pv])
    np.testing.assert_array_equal(net.sgen.p_mw[~d_pv], sgen0.p_mw[~d_pv])
    sp = out[("sgen", "p_mw")]
    cols = net.sgen.index[d_pv]
    np.testing.assert_allclose(sp[cols].to_numpy(), 2.0 * sp0[cols].to_numpy())
    rest = net.sgen.index[~d_pv]
    np.testing.assert_array_equal(sp[rest].to_numpy(), sp0[rest].to_numpy())
    # T load: 1.5 on p, q and the profiles; D loads unchanged
    np.testing.assert_allclose(net.load.p_mw[t_load], 1.5 * load0.p_mw[t_load])
    np.testing.assert_allclose(net.load.q_mvar[t_load], 1.5 * load0.q_mvar[t_load])
    np.testing.assert_array_equal(net.load.p_mw[~t_load], load0.p_mw[~t_load])
    t_cols = net.load.index[t_load]
    np.testing.assert_allclose(out[("load", "p_mw")][t_cols].to_numpy(),
                               1.5 * lp0[t_cols].to_numpy())
    assert prof[("sgen", "p_mw")].equals(sp0)  # the caller's profiles are not modified


def test_storage_growth_scales_power_and_energy():
    net, prof = build_tiny()
    sto0 = net.storage.copy()
    apply_growth(_tiny("[growth.storage]\nD = 2.0\n"), net, prof, None)
    t_name, grid_of = bus_grids(net)
    d = net.storage.bus.map(grid_of).ne(t_name).to_numpy()
    np.testing.assert_allclose(net.storage.max_e_mwh[d], 2.0 * sto0.max_e_mwh[d])
    np.testing.assert_array_equal(net.storage.max_e_mwh[~d], sto0.max_e_mwh[~d])


def test_scaled_memory_mapped_profile_reads_scaled_columns():
    values = np.arange(12.0).reshape(4, 3)
    base = MappedProfile(values, pd.Index([10, 11, 12]))
    scaled = ScaledProfile(values, base.columns, np.array([1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(scaled.rows([1, 3]), values[[1, 3]] * [1.0, 2.0, 0.5])
    got = scaled.rows([2], pd.Index([12, 99, 10]))
    np.testing.assert_array_equal(got[0, [0, 2]], [values[2, 2] * 0.5, values[2, 0]])
    assert np.isnan(got[0, 1])
    np.testing.assert_array_equal(values, np.arange(12.0).reshape(4, 3))  # file untouched


def test_d_stress_is_an_ordinary_scenario_key():
    sc = load("dgrid", {"growth.d_stress": 1.5})
    assert sc.growth.d_stress == 1.5
    with pytest.raises(ScenarioError, match="d_stress"):
        load("dgrid", {"growth.d_stress": -1.0})
    with pytest.raises(ScenarioError, match="growth.pv.X"):
        parse(TINY + "[growth.pv]\nX = 2.0\n", "test")
