"""Split a coupled T+D pandapower net at its TSO-DSO interfaces (the HV/MV transformers).

Which buses form which grid comes from SimBench's `bus.subnet` names, or, for an own net,
from the interface transformers given: the T grid is what stays connected to the ext_grid
once they are cut, each other connected part on their LV sides is one D grid.

The result is one transmission net (the TSO's grid: HV plus the EHV stub with the external
grids) and one net per distribution grid (one DSO each). In the transmission net every
interface transformer is replaced by a load at its HV bus (the interface exchange, positive
from T into D); in a distribution net the HV bus of each interface transformer becomes the
slack, whose voltage the transmission grid returns. At the fixed point of that exchange the
split power flows equal the power flow of the coupled net.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet
from pandapower.toolbox import pp_elements
from pandapower.toolbox.grid_modification import _select_cost_df

T_GRID_PREFIXES = ("EHV", "HV")


@dataclass(frozen=True)
class Interface:
    """One TSO-DSO interface: an HV/MV transformer of the coupled net."""

    name: str  # transformer name
    grid: str  # the D grid it feeds
    trafo: int  # transformer index (same in the coupled and the D net)
    hv_bus: int  # pandapower bus index of its HV side (in both the T and the D net)
    t_load: int  # index of the load that stands for it in the T net


@dataclass
class SplitNet:
    """The coupled net cut into the T net and the D net.

    The D net holds every D grid, each an island with its own slack(s) at the HV side of its
    interface transformers, so that one power flow solves all of them at once; `d_buses`
    says which buses belong to which D grid (including the HV buses of its interfaces).
    """

    t_name: str
    t_net: pandapowerNet
    d_net: pandapowerNet
    d_buses: dict[str, list[int]]
    interfaces: list[Interface]


def grid_of_subnet(subnet: str) -> str:
    """Name of the grid a SimBench subnet belongs to: the part before the first '_'.

    'HV1_MV1.101' (the HV side of a substation) belongs to 'HV1'; 'MV1.101_LV1.101' to 'MV1.101'.
    """
    return str(subnet).split("_")[0]


#: Grid names of own nets split at given transformers: the T grid, and D1, D2, ...
OWN_T_NAME = "T"


def bus_grids(net: pandapowerNet, interfaces: list[int] | None = None
              ) -> tuple[str, dict[int, str]]:
    """Map every bus to its grid name; all EHV/HV buses form the one T grid. With
    `interfaces` (transformer indices) the grids are the parts of the net those cut apart."""
    if interfaces is not None:
        return _cut_grids(net, interfaces)
    grids = {int(b): grid_of_subnet(s) for b, s in net.bus.subnet.items()}
    t_names = sorted({g for g in grids.values() if g.startswith(T_GRID_PREFIXES)})
    hv = [g for g in t_names if g.startswith("HV")]
    t_name = hv[0] if hv else t_names[0]
    return t_name, {b: (t_name if g.startswith(T_GRID_PREFIXES) else g) for b, g in grids.items()}


def _cut_grids(net: pandapowerNet, interfaces: list[int]) -> tuple[str, dict[int, str]]:
    """Grids of an own net: cut the interface transformers; the part holding the ext_grid is
    the T grid, each part on an interface's LV side a D grid (D1, D2, ... in the order of
    their first interface). Buses in neither part are left out of the map."""
    import networkx as nx
    from pandapower.topology import create_nxgraph

    graph = create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    cut = set(interfaces)
    for u, v, key in list(graph.edges(keys=True)):
        if key[0] == "trafo" and int(key[1]) in cut:
            graph.remove_edge(u, v, key)
    component = {}
    for k, comp in enumerate(nx.connected_components(graph)):
        for b in comp:
            component[int(b)] = k
    slack = {component[int(b)] for b in net.ext_grid.bus[net.ext_grid.in_service]
             if int(b) in component}
    grid_of = {b: OWN_T_NAME for b, c in component.items() if c in slack}
    names: dict[int, str] = {}
    for t in sorted(interfaces):
        hv, lv = int(net.trafo.hv_bus[t]), int(net.trafo.lv_bus[t])
        if grid_of.get(hv) != OWN_T_NAME:
            raise ValueError(f"interface transformer {t}: its HV side (bus {hv}) is not "
                             f"connected to the T grid (the ext_grid)")
        c = component.get(lv)
        if c is None or c in slack:
            raise ValueError(f"interface transformer {t}: its LV side (bus {lv}) is connected "
                             f"back to the T grid, so it does not separate a D grid")
        names.setdefault(c, f"D{len(names) + 1}")
    grid_of.update({b: names[c] for b, c in component.items() if c in names})
    return OWN_T_NAME, grid_of


@functools.lru_cache(maxsize=1)
def _empty_net() -> pandapowerNet:
    """pandapower's empty net without standard types, built once per process (it takes about
    0.4 s: ~100 typed tables)."""
    return pp.create_empty_network(add_stdtypes=False)


def select_buses(net: pandapowerNet, buses: set[int]) -> pandapowerNet:
    """The part of `net` on `buses`: exactly what pandapower's
    ``select_subnet(net, buses, include_results=False)`` returns (a test compares them), but
    started from a copy of one empty net per process instead of a new one per call."""
    buses = set(buses)  # as select_subnet: the bus table's order is this set's order
    p2 = copy.deepcopy(_empty_net())
    p2["std_types"] = copy.deepcopy(net["std_types"])
    for key in ("name", "f_hz"):
        if key in net:
            p2[key] = net[key]
    p2.bus = net.bus.loc[list(buses)]
    for elm in pp_elements(bus=False, bus_elements=True, branch_elements=False,
                           other_elements=False, res_elements=False):
        p2[elm] = net[elm][net[elm].bus.isin(buses)]
    p2.line = net.line[net.line.from_bus.isin(buses) & net.line.to_bus.isin(buses)]
    p2.dcline = net.dcline[net.dcline.from_bus.isin(buses) & net.dcline.to_bus.isin(buses)]
    p2.trafo = net.trafo[net.trafo.hv_bus.isin(buses) & net.trafo.lv_bus.isin(buses)]
    p2.trafo3w = net.trafo3w[net.trafo3w.hv_bus.isin(buses) & net.trafo3w.mv_bus.isin(buses)
                             & net.trafo3w.lv_bus.isin(buses)]
    p2.impedance = net.impedance[net.impedance.from_bus.isin(buses)
                                 & net.impedance.to_bus.isin(buses)]
    m = net.measurement
    p2.measurement = m[((m.element_type == "bus") & m.element.isin(buses))
                       | ((m.element_type == "line") & m.element.isin(p2.line.index))
                       | ((m.element_type == "trafo") & m.element.isin(p2.trafo.index))
                       | ((m.element_type == "trafo3w") & m.element.isin(p2.trafo3w.index))]
    for kind in ("characteristic_table", "characteristic_spline"):
        if f"trafo_{kind}" in net:
            ids = net[f"trafo_{kind}"].id_characteristic
            p2[f"trafo_{kind}"] = net[f"trafo_{kind}"][
                ids.isin(p2.trafo[f"id_{kind}"].values)
                | ids.isin(p2.trafo3w[f"id_{kind}"].values)]
        for elm in ("shunt", "gen"):
            if f"{elm}_{kind}" in net:
                table = net[f"{elm}_{kind}"]
                p2[f"{elm}_{kind}"] = table[table.id_characteristic.isin(
                    p2[elm][f"id_{kind}"].values)]
    _select_cost_df(net, p2, "poly_cost")
    _select_cost_df(net, p2, "pwl_cost")
    for geo, table in (("bus_geodata", "bus"), ("line_geodata", "line")):
        if geo in net:
            p2[geo] = net[geo].loc[p2[table].index.intersection(net[geo].index)]
    sw = net.switch
    p2["switch"] = sw.loc[sw.bus.isin(p2.bus.index) & pd.concat([
        sw[sw.et == "b"].element.isin(p2.bus.index),
        sw[sw.et == "l"].element.isin(p2.line.index),
        sw[sw.et == "t"].element.isin(p2.trafo.index)], sort=False)]
    return pandapowerNet(p2)


def split_net(net: pandapowerNet, interfaces: list[int] | None = None) -> SplitNet:
    """Cut `net` at the HV/MV transformers (or the transformers `interfaces`); the input net
    is not modified."""
    t_name, grid_of = bus_grids(net, interfaces)
    t_buses = {b for b, g in grid_of.items() if g == t_name}
    ifaces = net.trafo[
        net.trafo.hv_bus.map(grid_of).eq(t_name) & net.trafo.lv_bus.map(grid_of).ne(t_name)
        & net.trafo.lv_bus.map(grid_of).notna() & net.trafo.in_service
    ]
    if ifaces.empty:
        raise ValueError("the net has no HV/MV transformer between the T grid and a D grid")

    t_net = select_buses(net, t_buses)
    d_buses: dict[str, list[int]] = {}
    found: list[tuple[str, int, str, int]] = []  # (grid, trafo, name, hv bus) per interface
    hv_all: list[int] = []
    for grid in sorted({grid_of[int(b)] for b in ifaces.lv_bus}):
        mine = ifaces[ifaces.lv_bus.map(grid_of) == grid]
        hv = sorted({int(b) for b in mine.hv_bus})
        hv_all += hv
        d_buses[grid] = sorted({b for b, g in grid_of.items() if g == grid} | set(hv))
        found += [(grid, int(idx), str(name), int(bus))
                  for idx, name, bus in zip(mine.index, mine["name"], mine.hv_bus, strict=True)]
    # one call for all interfaces: pandapower's create_load re-types the whole table per call
    loads = pp.create_loads(t_net, [f[3] for f in found], p_mw=0.0, q_mvar=0.0,
                            name=[f"interface {f[2]}" for f in found])
    for col in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):  # floats, as create_load
        if col in t_net.load and t_net.load[col].dtype == object:  # leaves them (SimBench's
            t_net.load[col] = t_net.load[col].astype(float)  # are objects, all NaN)
    interfaces = [Interface(name=name, grid=grid, trafo=trafo, hv_bus=bus, t_load=int(load))
                  for (grid, trafo, name, bus), load in zip(found, loads, strict=True)]
    d_net = select_buses(net, {b for buses in d_buses.values() for b in buses})
    # the HV side buses belong to the TSO: their own loads and generators stay in the T net
    for table in ("load", "sgen", "storage", "gen", "shunt", "ext_grid", "ward", "xward"):
        df = d_net[table]
        if len(df):
            d_net[table] = df[~df.bus.isin(hv_all)]
    for b in sorted(set(hv_all)):
        pp.create_ext_grid(d_net, b, vm_pu=1.0, va_degree=0.0, name=f"interface {b}")
    return SplitNet(t_name=t_name, t_net=t_net, d_net=d_net, d_buses=d_buses,
                    interfaces=interfaces)
