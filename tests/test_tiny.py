"""Tests of the built-in tiny T+D case (scenarios/tiny.py)."""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.topology as top
import pandas as pd
import pytest
from tsodso.scenarios.forecast import asset_kind_sgen
from tsodso.scenarios.tiny import (
    N_STEPS,
    apply_profile_step,
    build_tiny,
    build_tiny_net,
    tiny_profiles_year,
)

PROFILE_KEYS = {("load", "p_mw"), ("load", "q_mvar"), ("sgen", "p_mw"), ("gen", "p_mw"),
                ("storage", "p_mw")}


@pytest.fixture(scope="module")
def tiny():
    return build_tiny()


def _grid(subnet: str) -> str:
    """Grid named by a subnet: the part before the first "_"."""
    return subnet.split("_")[0]


def _bus_grid(net) -> pd.Series:
    return net.bus.subnet.map(_grid)


def _run(net, profiles, step: int) -> None:
    apply_profile_step(net, profiles, step)
    pp.runpp(net, numba=False)


def test_levels_and_interfaces(tiny) -> None:
    net, _ = tiny
    grid = _bus_grid(net)
    assert set(grid) == {"EHV1", "HV1", "MV1.101", "MV2.101"}
    ehv = net.bus.index[net.bus.subnet.str.startswith("EHV1")]
    assert set(net.ext_grid.bus) <= set(ehv) and len(net.ext_grid) == 1
    assert (net.bus.loc[ehv, "vn_kv"] == 380.0).all()
    assert (net.bus.vn_kv[grid == "HV1"] == 110.0).all()
    assert (net.bus.vn_kv[grid.str.startswith("MV")] == 20.0).all()
    assert (net.bus.subnet == "HV1").sum() >= 6

    hv_grid = net.trafo.hv_bus.map(grid)
    lv_grid = net.trafo.lv_bus.map(grid)
    interfaces = net.trafo[(hv_grid == "HV1") & lv_grid.str.startswith("MV")]
    assert len(interfaces) == 2
    for _, tr in interfaces.iterrows():
        d = grid[tr.lv_bus]
        assert net.bus.subnet[tr.hv_bus] == f"HV1_{d}"
        assert net.bus.subnet[tr.lv_bus] == d
        assert (tr.vn_hv_kv, tr.vn_lv_kv) == (110.0, 20.0)
    assert set(lv_grid[interfaces.index]) == {"MV1.101", "MV2.101"}
    ehv_link = net.trafo[(hv_grid == "EHV1") & (lv_grid == "HV1")]
    assert len(ehv_link) == 1 and ehv_link.vn_hv_kv.iloc[0] == 380.0


def test_topology_t_meshed_d_radial(tiny) -> None:
    net, _ = tiny
    grid = _bus_grid(net)
    graph = top.create_nxgraph(net)
    assert nx.is_connected(graph)
    t_lines = net.line[net.line.from_bus.map(grid).eq("HV1") & net.line.to_bus.map(grid).eq("HV1")]
    t_buses = set(t_lines.from_bus) | set(t_lines.to_bus)
    assert len(t_lines) > len(t_buses) - 1  # at least one loop: meshed
    for d in ("MV1.101", "MV2.101"):
        buses = net.bus.index[grid == d]
        lines = net.line[net.line.from_bus.isin(buses) & net.line.to_bus.isin(buses)]
        assert 5 <= len(buses) - 1 <= 8
        assert len(lines) == len(buses) - 1  # tree: radial
        sub = nx.Graph(list(zip(lines.from_bus, lines.to_bus, strict=True)))
        assert nx.is_tree(sub)


def test_elements_columns_names_and_kinds(tiny) -> None:
    net, _ = tiny
    for col in ("subnet", "min_vm_pu", "max_vm_pu", "name"):
        assert net.bus[col].notna().all(), col
    assert (net.line.max_loading_percent == 100.0).all()
    required = {
        "load": ["p_mw", "q_mvar", "subnet", "name"],
        "sgen": ["p_mw", "q_mvar", "type", "subnet", "name"],
        "storage": ["p_mw", "max_e_mwh", "soc_percent", "min_e_mwh", "min_p_mw", "max_p_mw",
                    "subnet", "name"],
        "line": ["name", "subnet", "max_loading_percent"],
        "trafo": ["name", "subnet"],
        "ext_grid": ["name"],
    }
    for table, cols in required.items():
        df = net[table]
        assert len(df) > 0
        for col in cols:
            assert col in df.columns and df[col].notna().all(), (table, col)
        assert df.name.is_unique and (df.name.str.len() > 0).all(), table
    assert net.bus.name.is_unique

    grid = _bus_grid(net)
    sgen_grid = net.sgen.bus.map(grid)
    kinds = net.sgen.type.map(asset_kind_sgen)
    hv_wind = net.sgen[(sgen_grid == "HV1") & (net.sgen.type == "Wind")]
    assert len(hv_wind) == 1 and 40.0 <= hv_wind.p_mw.iloc[0] <= 80.0
    for g in ("HV1", "MV1.101", "MV2.101"):
        assert (net.load.bus.map(grid) == g).any()
        assert (net.storage.bus.map(grid) == g).any()
    for d in ("MV1.101", "MV2.101"):
        assert set(net.sgen.type[sgen_grid == d]) == {"PV_MV", "Wind_MV"}
        assert set(kinds[sgen_grid == d]) == {"pv", "wind"}
    # The element subnet names the same grid as the bus it sits on.
    for table in ("load", "sgen", "storage"):
        df = net[table]
        assert (df.subnet.map(_grid) == df.bus.map(grid)).all(), table


def test_profiles_format_and_determinism(tiny) -> None:
    net, prof = tiny
    assert set(prof) == PROFILE_KEYS
    for (element, _), df in prof.items():
        assert df.shape == (N_STEPS, len(net[element])) and N_STEPS == 366 * 96
        assert list(df.columns) == list(net[element].index)
        assert np.isfinite(df.to_numpy()).all()
    # A fresh build (no cache) gives identical numbers: the noise comes from a fixed seed.
    again = tiny_profiles_year(build_tiny_net())
    for key in PROFILE_KEYS:
        pd.testing.assert_frame_equal(prof[key], again[key])


def test_build_tiny_hands_out_independent_copies() -> None:
    net, prof = build_tiny()
    net.load.loc[net.load.index[0], "p_mw"] = -1.0
    prof[("sgen", "p_mw")].iloc[0, 0] = -1.0
    net2, prof2 = build_tiny()
    assert net2.load.p_mw.iloc[0] > 0.0
    assert prof2[("sgen", "p_mw")].iloc[0, 0] >= 0.0


def test_profiles_are_physical(tiny) -> None:
    net, prof = tiny
    sgen = prof[("sgen", "p_mw")]
    assert (sgen.to_numpy() >= 0.0).all()
    assert (sgen.to_numpy() <= net.sgen.p_mw.to_numpy() + 1e-12).all()
    pv = net.sgen.index[net.sgen.type == "PV_MV"]
    midnight = np.arange(0, N_STEPS, 96)
    assert (sgen.loc[midnight, pv].to_numpy() == 0.0).all()
    june = slice(152 * 96, 182 * 96)  # 2016 is a leap year: June starts on day 152
    december = slice(335 * 96, 366 * 96)
    assert sgen.iloc[june][pv].sum().sum() > 3.0 * sgen.iloc[december][pv].sum().sum()
    cf = sgen.mean() / net.sgen.p_mw
    assert cf[pv].between(0.08, 0.16).all()  # German PV: ~900-1,200 full-load hours
    assert cf.drop(pv).between(0.15, 0.40).all()  # wind

    load_p, load_q = prof[("load", "p_mw")], prof[("load", "q_mvar")]
    assert (load_p.to_numpy() > 0.0).all()
    np.testing.assert_allclose(load_p.max(), net.load.p_mw)  # p_mw is the peak
    tan_phi = (net.load.q_mvar / net.load.p_mw).to_numpy()
    np.testing.assert_allclose(load_q.to_numpy(), load_p.to_numpy() * tan_phi, rtol=1e-12)

    sto = prof[("storage", "p_mw")]
    assert (sto.to_numpy() <= net.storage.max_p_mw.to_numpy() + 1e-12).all()
    assert (sto.to_numpy() >= net.storage.min_p_mw.to_numpy() - 1e-12).all()
    energy = (net.storage.soc_percent / 100.0 * net.storage.max_e_mwh).to_numpy()
    energy = energy + sto.cumsum().to_numpy() * 0.25  # pandapower: p > 0 charges
    assert (energy >= net.storage.min_e_mwh.to_numpy() - 1e-9).all()
    assert (energy <= net.storage.max_e_mwh.to_numpy() + 1e-9).all()
    assert (sto.to_numpy() > 0).any() and (sto.to_numpy() < 0).any()


def test_power_flow_converges_on_sampled_steps(tiny) -> None:
    net, prof = tiny
    net = copy.deepcopy(net)
    for step in np.linspace(37, N_STEPS - 1, 6).astype(int):
        _run(net, prof, int(step))
        assert net.converged
        assert net.res_bus.vm_pu.between(0.85, 1.15).all()
        # Power balance: slack covers load + storage charging - generation + losses (> 0).
        losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
        balance = (net.res_load.p_mw.sum() + net.res_storage.p_mw.sum()
                   - net.res_sgen.p_mw.sum() + losses)
        assert net.res_ext_grid.p_mw.sum() == pytest.approx(balance, abs=1e-6)
        assert losses > 0.0


def _net_injection(net, prof, d: str) -> pd.Series:
    """Per step: generation minus load minus storage charging inside D grid ``d`` (MW)."""
    grid = _bus_grid(net)

    def members(table: str) -> pd.Index:
        return net[table].index[net[table].bus.map(grid) == d]

    return (prof[("sgen", "p_mw")][members("sgen")].sum(axis=1)
            - prof[("load", "p_mw")][members("load")].sum(axis=1)
            - prof[("storage", "p_mw")][members("storage")].sum(axis=1))


def test_year_holds_distribution_grid_problems(tiny) -> None:
    net, prof = tiny
    net = copy.deepcopy(net)
    grid = _bus_grid(net)
    vmax = net.bus.max_vm_pu
    vmin = net.bus.min_vm_pu
    found = []
    for d in ("MV1.101", "MV2.101"):
        inj = _net_injection(net, prof, d)
        d_bus = grid == d
        d_line = net.line.from_bus.map(grid) == d
        # Scan the year for the strongest reverse flow and the heaviest load.
        for step, kind in ((int(inj.idxmax()), "export"), (int(inj.idxmin()), "import")):
            _run(net, prof, step)
            assert net.converged
            vm = net.res_bus.vm_pu
            over = (net.res_line.loading_percent[d_line] > 100.0).any()
            high = (vm[d_bus] > vmax[d_bus]).any()
            low = (vm[d_bus] < vmin[d_bus]).any()
            if over or high or low:
                found.append((d, kind, step, over, high, low))
    assert found, "no D-grid overload or voltage violation at the scanned extreme steps"
    # The PV-heavy grid overloads a line at its strongest export.
    assert any(d == "MV1.101" and kind == "export" and over for d, kind, _, over, _, _ in found)
    # The load-heavy grid drops below its voltage band at its heaviest load.
    assert any(d == "MV2.101" and kind == "import" and low for d, kind, _, _, _, low in found)


def test_year_stresses_the_transmission_corridor(tiny) -> None:
    net, prof = tiny
    net = copy.deepcopy(net)
    grid = _bus_grid(net)
    link = net.trafo.lv_bus[net.trafo.hv_bus.map(grid) == "EHV1"].iloc[0]
    # Everything except the load at the EHV link bus flows out through the two 40 MVA corridor
    # lines of that bus; scan for the strongest export.
    behind = net.load.bus != link
    export = (prof[("sgen", "p_mw")].sum(axis=1)
              - prof[("load", "p_mw")][net.load.index[behind]].sum(axis=1)
              - prof[("storage", "p_mw")].sum(axis=1))
    assert export.max() > 60.0  # well above one corridor line's ~40 MVA
    _run(net, prof, int(export.idxmax()))
    corridor = (net.line.from_bus == link) | (net.line.to_bus == link)
    assert corridor.sum() == 2
    flows = net.res_line.loading_percent[corridor]
    assert flows.max() > 90.0
    # The export leaves through the 380/110 kV transformer (p_lv_mw > 0: power into it from HV).
    assert net.res_trafo.p_lv_mw[net.trafo.lv_bus == link].iloc[0] > 50.0
