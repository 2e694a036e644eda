"""The split's fast paths give exactly what pandapower's own functions give: `select_buses`
as `select_subnet`, and the whole split as cutting with `select_subnet`, `create_load` and
`create_ext_grid` one call at a time (the code before), on the built-in tiny grid and on the
default SimBench grid, with every table, dtype and index."""

from __future__ import annotations

import pandapower as pp
import pytest
from pandapower.toolbox import nets_equal, select_subnet
from tsodso.scenarios.load import load
from tsodso.scenarios.split import bus_grids, select_buses, split_net
from tsodso.scenarios.world import interface_trafos, load_grid


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_select_buses_equals_select_subnet(name):
    sc = load(name)
    net, _ = load_grid(sc)
    t_name, grid_of = bus_grids(net, interface_trafos(sc, net))
    t_buses = {b for b, g in grid_of.items() if g == t_name}
    parts = [t_buses, set(grid_of) - t_buses]
    for buses in parts + parts:  # twice: the second call starts from the kept empty net
        mine = select_buses(net, buses)
        theirs = select_subnet(net, buses, include_results=False)
        _same(mine, theirs)


def test_select_buses_does_not_share_tables_between_calls():
    net, _ = load_grid(load("tiny"))
    a = select_buses(net, set(net.bus.index))
    a.load.loc[a.load.index[0], "p_mw"] += 1.0
    a.res_bus.loc[0, "vm_pu"] = 1.0  # writing into the copy of the empty net's tables
    b = select_buses(net, set(net.bus.index))
    assert b.res_bus.empty
    assert b.load.p_mw.iloc[0] == net.load.p_mw.iloc[0]
    split = split_net(net, interface_trafos(load("tiny"), net))
    assert len(split.d_net.ext_grid) == len({i.hv_bus for i in split.interfaces})


def _reference_split(net, interfaces):
    """The split as it was written with pandapower's own functions, one call per element."""
    t_name, grid_of = bus_grids(net, interfaces)
    t_buses = {b for b, g in grid_of.items() if g == t_name}
    ifaces = net.trafo[net.trafo.hv_bus.map(grid_of).eq(t_name)
                       & net.trafo.lv_bus.map(grid_of).ne(t_name)
                       & net.trafo.lv_bus.map(grid_of).notna() & net.trafo.in_service]
    t_net = select_subnet(net, t_buses, include_results=False)
    d_buses, loads, hv_all = {}, [], []
    for grid in sorted({grid_of[int(b)] for b in ifaces.lv_bus}):
        mine = ifaces[ifaces.lv_bus.map(grid_of) == grid]
        hv = sorted({int(b) for b in mine.hv_bus})
        hv_all += hv
        d_buses[grid] = sorted({b for b, g in grid_of.items() if g == grid} | set(hv))
        for _, row in mine.iterrows():
            loads.append(pp.create_load(t_net, int(row.hv_bus), p_mw=0.0, q_mvar=0.0,
                                        name=f"interface {row['name']}"))
    d_net = select_subnet(net, {b for buses in d_buses.values() for b in buses},
                          include_results=False)
    for table in ("load", "sgen", "storage", "gen", "shunt", "ext_grid", "ward", "xward"):
        df = d_net[table]
        if len(df):
            d_net[table] = df[~df.bus.isin(hv_all)]
    for b in sorted(set(hv_all)):
        pp.create_ext_grid(d_net, b, vm_pu=1.0, va_degree=0.0, name=f"interface {b}")
    return t_net, d_net, d_buses, loads


def _same(a, b) -> None:
    assert nets_equal(a, b, check_only_results=False, exclude_elms=None)
    assert sorted(a.keys()) == sorted(b.keys())
    for key in b.keys():
        if hasattr(b[key], "dtypes"):
            assert a[key].dtypes.equals(b[key].dtypes), key
            assert a[key].index.equals(b[key].index), key
            assert a[key].equals(b[key]), key


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_split_equals_the_one_call_per_element_split(name):
    sc = load(name)
    net, _ = load_grid(sc)
    trafos = interface_trafos(sc, net)
    t_net, d_net, d_buses, loads = _reference_split(net, trafos)
    split = split_net(net, trafos)
    _same(split.t_net, t_net)
    _same(split.d_net, d_net)
    assert split.d_buses == d_buses
    assert [i.t_load for i in split.interfaces] == [int(x) for x in loads]
    assert (split.t_net.load.loc[loads, "name"].str.startswith("interface ")).all()
