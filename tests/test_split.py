"""`select_buses` gives exactly pandapower's `select_subnet` (the split's two subnets), on the
built-in tiny grid and on the default SimBench grid, with every table, dtype and index."""

from __future__ import annotations

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
        assert nets_equal(mine, theirs, check_only_results=False, exclude_elms=None)
        assert sorted(mine.keys()) == sorted(theirs.keys())
        for key in theirs.keys():
            if hasattr(theirs[key], "dtypes"):
                assert mine[key].dtypes.equals(theirs[key].dtypes), key
                assert mine[key].index.equals(theirs[key].index), key


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
