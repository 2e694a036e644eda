"""From a scenario to a running mosaik world.

`prepare` loads the grid and its profiles, draws the forecast errors, splits the net at the
TSO-DSO interfaces and builds everything the simulators share (grid models, realised time
series, flexible resources, the transmission model of the market, the scheme). `build_world`
starts the simulators and connects them; `run` does both and streams the results to HDF5.

Data flows one way: scenario -> world -> simulators (providers, grids) -> coordinator ->
recorder -> results file.
"""

from __future__ import annotations

import copy
import functools
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tsodso.coordination.dgrids import DGridView, DModel
from tsodso.coordination.dnetwork import sensitivities
from tsodso.coordination.need import GridLimits
from tsodso.coordination.ptdf import TransmissionModel, transmission_ptdf
from tsodso.coordination.schemes import MarketSetup, Scheme, make_scheme
from tsodso.core.assets import classify
from tsodso.core.powerflow import GridModel
from tsodso.core.series import BlockSeries
from tsodso.scenarios.cache import MappedProfile, load_simbench
from tsodso.scenarios.forecast import ErrorParams, ErrorStream
from tsodso.scenarios.grids import (
    calendar,
    check_simbench_code,
    check_split,
    error_start,
    interface_trafos,
    load_own,
)
from tsodso.scenarios.growth import apply_growth
from tsodso.scenarios.load import ScenarioError
from tsodso.scenarios.schema import Scenario
from tsodso.scenarios.split import Interface, split_net
from tsodso.scenarios.window import RunWindow
from tsodso.simulators.flexibility import GridAssets, Portfolio
from tsodso.simulators.grid import GridSlice, LevelRuntime, SetpointControl
from tsodso.simulators.taps import TapSettings
from tsodso.simulators.timing import Timing

#: Set-up phases, one line each (the CLI shows them on stderr).
log = logging.getLogger("tsodso.setup")


@dataclass(frozen=True)
class RunContext:
    """What `prepare` builds for one run; frozen. The simulators get their parts of it: the
    grid simulators a level each, the providers the portfolio (whose state of charge they
    own), the coordinator the scheme and the limits."""

    scenario: Scenario
    scheme: Scheme
    step_s: int
    n_steps: int
    t_name: str
    dso_grids: tuple[str, ...]
    grid_order: tuple[str, ...]
    interfaces: tuple[Interface, ...]
    levels: dict[str, LevelRuntime]
    limits: dict[str, GridLimits]
    portfolio: Portfolio
    market: MarketSetup
    level: dict[str, str] = field(default_factory=dict)

    @property
    def scheme_name(self) -> str:
        return self.scheme.name

    @property
    def until(self) -> int:
        return self.n_steps * self.step_s


def quiet_libraries() -> None:
    """Silence the libraries' chatter (numba hints, deprecation notes, mosaik banners)."""
    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # mosaik leaves waits pending at exit
    try:
        from loguru import logger

        logger.disable("mosaik")
        logger.disable("mosaik_api_v3")
    except ImportError:  # pragma: no cover
        pass


def load_grid(scenario: Scenario):
    """The coupled net and its profiles, grown per `[growth]` (scenarios/growth.py), with the
    interface taps set for the run's start on the grown grid."""
    source = scenario.grid.source
    if source == "tiny":
        from tsodso.scenarios.tiny import build_tiny

        net, profiles = build_tiny()
    elif source == "pandapower":
        net, profiles = load_own(scenario)
        check_split(scenario, net)
    else:
        check_simbench_code(scenario.grid.code)
        net, profiles = _simbench(scenario.grid.code)
        net = copy.deepcopy(net)
    profiles = apply_growth(scenario, net, profiles, interface_trafos(scenario, net))
    if scenario.grid.mv_busbar_pu is not None:
        set_interface_taps(net, profiles, calendar(scenario).first_row,
                           scenario.grid.mv_busbar_pu, interface_trafos(scenario, net))
    return net, profiles


@functools.lru_cache(maxsize=1)
def _simbench(code: str):
    """SimBench net and profiles, read once per process from the on-disk cache
    (`scenarios/cache.py`, converted on a machine's first run); callers get a copy of the net.
    The profiles are memory-mapped: only the rows a run asks for are read."""
    return load_simbench(code)


def profile_rows(df, rows, index: pd.Index | None = None) -> np.ndarray:
    """float64 values of profile `rows` (a DataFrame, or a memory-mapped profile of the cache,
    which reads only these rows), columns reindexed to `index` (NaN where missing)."""
    if isinstance(df, MappedProfile):
        return df.rows(rows, index)
    if index is not None:
        df = df.reindex(columns=index)
    return df.to_numpy(dtype=float)[rows]


def set_interface_taps(net, profiles, row: int, target_pu: float,
                       interfaces: list[int] | None = None) -> None:
    """Set every HV/MV transformer's tap for the run's start, the DSO's choice: the position
    that brings its MV busbar nearest `target_pu` at the run's first step. During the run the
    DSOs' on-load tap changers move them (`simulators/taps.py`, `control.dso_taps`); without
    them the MV voltage follows the HV voltage through the day."""
    import pandapower as pp
    from tsodso.scenarios.split import bus_grids

    t_name, grid_of = bus_grids(net, interfaces)
    iface = net.trafo.index[net.trafo.hv_bus.map(grid_of).eq(t_name)
                            & net.trafo.lv_bus.map(grid_of).ne(t_name)
                            & net.trafo.lv_bus.map(grid_of).notna()
                            & net.trafo.tap_step_percent.fillna(0).gt(0)]
    if not len(iface):
        return
    net.trafo.loc[iface, "tap_changer_type"] = "Ratio"
    work = copy.deepcopy(net)
    for (table, col), df in profiles.items():
        if df.shape[1]:
            work[table].loc[df.columns, col] = (df.rows([row])[0] if isinstance(df, MappedProfile)
                                                else df.iloc[row].to_numpy())
    try:
        pp.runpp(work, numba=False)
    except Exception as exc:
        raise ScenarioError(f"initial power flow of the coupled net failed: {exc}") from None
    tr = net.trafo.loc[iface]
    vm_lv = work.res_bus.vm_pu.loc[tr.lv_bus].to_numpy()
    sign = np.where(tr.tap_side.to_numpy() == "hv", 1.0, -1.0)  # hv taps up lower the LV side
    move = sign * (vm_lv / target_pu - 1.0) * 100.0 / tr.tap_step_percent.to_numpy()
    pos = np.clip(np.round(tr.tap_pos.fillna(0).to_numpy() + move), tr.tap_min, tr.tap_max)
    net.trafo.loc[iface, "tap_pos"] = pos


def storage_rating(sto: pd.DataFrame) -> np.ndarray:
    """Power rating of each storage unit (MW): `max_p_mw` where set, else its apparent power
    rating `sn_mva` (SimBench leaves `max_p_mw` at 0 and rates its units in `sn_mva`)."""
    p_max = np.abs(sto.max_p_mw.fillna(0.0).to_numpy(float)) if "max_p_mw" in sto else \
        np.zeros(len(sto))
    sn = (sto.sn_mva.fillna(0.0).to_numpy(float) if "sn_mva" in sto
          else np.abs(sto.p_mw.to_numpy(float)))
    return np.where(p_max > 0, p_max, np.abs(sn))


def storage_idle(net) -> np.ndarray:
    """Storage units scheduled idle: those without a power limit of their own (max_p_mw 0)."""
    sto = net.storage
    if "max_p_mw" not in sto:
        return np.zeros(len(sto), dtype=bool)
    return sto.max_p_mw.fillna(0.0).to_numpy(float) == 0.0


def _window(profiles, table: str, col: str, index: pd.Index, rows: np.ndarray,
            fallback: np.ndarray) -> np.ndarray:
    """Profile values of `rows` for the elements `index` (static value where no profile)."""
    df = profiles.get((table, col))
    if df is None or df.shape[1] == 0:
        return np.tile(fallback, (len(rows), 1))
    out = profile_rows(df, rows, index)
    missing = np.isnan(out)
    if missing.any():
        out = np.where(missing, fallback[None, :], out)
    return out


def prepare(scenario: Scenario, scheme: str) -> RunContext:
    """Load, split and model the grid; draw the forecasts; build resources and the scheme."""
    quiet_libraries()
    run = scenario.run
    where = scenario.grid.code if scenario.grid.source == "simbench" else (
        scenario.grid.file if scenario.grid.source == "pandapower" else "built-in")
    log.info("loading grid (%s %s) and profiles", scenario.grid.source, where)
    net, profiles = load_grid(scenario)
    cal = calendar(scenario)
    n = run.steps

    # forecasts (= profiles) and realised values (+ seeded forecast errors) of the coupled net,
    # made block by block while the run walks through its steps (scenarios/window.py).
    # Storage without a power limit (SimBench: max_p_mw = 0) has no schedule of its own: its
    # profile is a load shape on the negative rating that would empty the unit every day
    # without ever charging it. It is scheduled idle and acts only when a market asks.
    sgen_kind = classify("sgen", net.sgen.type)
    load_kind = classify("load", net.load.profile if "profile" in net.load
                         else [None] * len(net.load))
    rating = np.r_[np.abs(net.load.p_mw.to_numpy(float)), net.sgen.p_mw.to_numpy(float),
                   storage_rating(net.storage)]
    kinds = np.r_[load_kind, sgen_kind, classify("storage", [None] * len(net.storage))]
    params = {k: ErrorParams(**v) for k, v in scenario.forecast.model_dump().items()}
    q_stride = run.step_s // 900  # quarter hours per step
    e_start = error_start(scenario)
    stream = ErrorStream(rating, kinds, params, run.seed,
                         end_step=e_start + (n - 1) * q_stride + 1)
    element_index = {"load": net.load.index, "sgen": net.sgen.index,
                     "storage": net.storage.index}
    static = {("load", "p_mw"): net.load.p_mw.to_numpy(),
              ("load", "q_mvar"): net.load.q_mvar.to_numpy(),
              ("sgen", "p_mw"): net.sgen.p_mw.to_numpy(),
              ("storage", "p_mw"): net.storage.p_mw.to_numpy()}

    idle = storage_idle(net)

    def profile(table: str, col: str, rows: np.ndarray) -> np.ndarray:
        out = _window(profiles, table, col, element_index[table], rows, static[(table, col)])
        if table == "storage":
            out[:, idle] = 0.0
        return out

    win = RunWindow(profile, n, cal.first_row, cal.stride, stream, e_start, q_stride, kinds,
                    rating, len(net.load), len(net.sgen))

    def part(key: str, pos: np.ndarray) -> BlockSeries:
        """Forecast columns `pos` of a block table."""
        return win.series(lambda d: d[key][:, pos], len(pos), realised=False)

    def deviation(d: dict, spos_: np.ndarray, lpos_: np.ndarray, tpos_: np.ndarray):
        """Realised minus forecast net injection of the given elements, per step."""
        return (d["re_sgen"] - d["sgen_p"])[:, spos_].sum(axis=1) \
            - (d["re_load"] - d["load_p"])[:, lpos_].sum(axis=1) \
            - (d["re_sto"] - d["sto_p"])[:, tpos_].sum(axis=1)

    # the balance responsible parties of the integrated market: RES producers and suppliers
    brp_imbalance = {"BRP:res": win.series(lambda d: (d["re_sgen"] - d["sgen_p"]).sum(axis=1),
                                           None),
                     "BRP:load": win.series(lambda d: -(d["re_load"] - d["load_p"]).sum(axis=1),
                                            None)}
    log.info("splitting the net at its TSO-DSO interfaces; building the power-flow models")
    split = split_net(net, interface_trafos(scenario, net))
    t_name = split.t_name
    dso_grids = sorted(split.d_buses)
    grid_order = [t_name, *dso_grids]
    lim_cfg = scenario.limits
    level_net = {"T": split.t_net, "D": split.d_net}
    grid_buses = {t_name: list(split.t_net.bus.index), **split.d_buses}
    levels: dict[str, LevelRuntime] = {}
    hv_buses = {i.hv_bus for i in split.interfaces}
    assets: list[GridAssets] = []
    limits: dict[str, GridLimits] = {}
    for level, lnet in level_net.items():
        try:
            model = GridModel(lnet)
        except Exception as exc:
            raise ScenarioError(f"{level} grid: initial power flow failed: {exc}") from None
        lpos = net.load.index.get_indexer(lnet.load.index)  # -1: the T net's interface loads
        spos = net.sgen.index.get_indexer(lnet.sgen.index)
        tpos = net.storage.index.get_indexer(lnet.storage.index)

        def cols(key: str, pos: np.ndarray) -> BlockSeries:
            ok = pos >= 0

            def make(d: dict) -> np.ndarray:
                arr = d[key]
                out = np.zeros((len(arr), len(pos)))
                out[:, ok] = arr[:, pos[ok]]
                return out
            return win.series(make, len(pos))

        def constant(row: np.ndarray) -> BlockSeries:
            return BlockSeries(lambda lo, hi: np.tile(row, (hi - lo, 1)), n, len(row))

        grids = [t_name] if level == "T" else dso_grids
        n_line = len(lnet.line)
        slices: dict[str, GridSlice] = {}
        imbalance: dict[str, BlockSeries] = {}
        for g in grids:
            buses = set(grid_buses[g])
            sl_load = np.flatnonzero(lnet.load.bus.isin(buses).to_numpy() & (lpos >= 0))
            sl_sgen = np.flatnonzero(lnet.sgen.bus.isin(buses).to_numpy())
            sl_sto = np.flatnonzero(lnet.storage.bus.isin(buses).to_numpy())
            branch = np.r_[np.flatnonzero(lnet.line.from_bus.isin(buses).to_numpy()),
                           n_line + np.flatnonzero(lnet.trafo.hv_bus.isin(buses).to_numpy()
                                                   | lnet.trafo.lv_bus.isin(buses).to_numpy())]
            mine = [i for i in split.interfaces if level == "T" or i.grid == g]
            trafo_pos = {int(t): n_line + j for j, t in enumerate(lnet.trafo.index)}
            own = buses - hv_buses if level == "D" else buses  # HV side buses are the TSO's
            slices[g] = GridSlice(
                name=g, bus=lnet.bus.index.get_indexer(sorted(own)), branch=branch,
                load=sl_load, sgen=sl_sgen, sto=sl_sto, interfaces=mine,
                iface_branch=np.array([trafo_pos[i.trafo] for i in mine] if level == "D"
                                      else [], dtype=np.int64),
                iface_slack=np.array([_slack_pos(model, i.hv_bus) for i in mine]
                                     if level == "D" else [], dtype=np.int64))
            imbalance[g] = win.series(
                functools.partial(deviation, spos_=spos[sl_sgen], lpos_=lpos[sl_load],
                                  tpos_=tpos[sl_sto]), None)
            lv = lim_cfg.T if level == "T" else lim_cfg.D
            limits[g] = GridLimits(lv.vm_min_pu, lv.vm_max_pu, lv.loading_max_percent,
                                   model.rating_mva[branch])
            sto = lnet.storage.iloc[sl_sto]
            e_max = sto.max_e_mwh.fillna(0.0).to_numpy(float)
            e_min = sto.min_e_mwh.fillna(0.0).to_numpy(float)
            soc0 = (sto.soc_percent.fillna(50.0).to_numpy(float) / 100.0 * e_max
                    if "soc_percent" in sto else 0.5 * e_max)
            assets.append(GridAssets(
                name=g, level=level,
                sgen_kind=sgen_kind[spos[sl_sgen]], load_kind=load_kind[lpos[sl_load]],
                sgen_bus=lnet.sgen.bus.to_numpy()[sl_sgen],
                load_bus=lnet.load.bus.to_numpy()[sl_load], sto_bus=sto.bus.to_numpy(),
                sto_rating=storage_rating(sto),
                sto_eta=(sto.efficiency_percent.to_numpy(float) if "efficiency_percent" in sto
                         else np.ones(len(sto))),
                sto_e_min=e_min, sto_e_max=e_max, sto_e0=np.clip(soc0, e_min, e_max),
                fc_load=part("load_p", lpos[sl_load]), fc_sgen=part("sgen_p", spos[sl_sgen]),
                fc_sto=part("sto_p", tpos[sl_sto]),
                bus_name={int(b): str(nm) for b, nm in lnet.bus.name.items()}))
        t_ifaces = split.interfaces if level == "T" else []
        levels[level] = LevelRuntime(
            level=level, model=model, grids=slices,
            re_load_p=cols("re_load", lpos), re_load_q=cols("re_load_q", lpos),
            re_sgen_p=cols("re_sgen", spos),
            re_sgen_q=constant(lnet.sgen.q_mvar.to_numpy(float)),
            re_sto_p=cols("re_sto", tpos), re_sto_q=constant(np.zeros(len(tpos))),
            imbalance=imbalance,
            iface_load=np.array([lnet.load.index.get_loc(i.t_load) for i in t_ifaces],
                                dtype=np.int64),
            iface_hv_bus=np.array([i.hv_bus for i in t_ifaces], dtype=np.int64),
            interfaces=t_ifaces)

    log.info("building the markets: %d D grid(s), %d interface(s), scheme '%s'",
             len(dso_grids), len(split.interfaces), scheme)
    # the TSO's market model: PTDFs of the T grid (computed once) and branch limits in MW
    ptdf = transmission_ptdf(copy.deepcopy(split.t_net))
    t_model = levels["T"].model
    t_net = split.t_net
    report_pos = {("line", int(i)): j for j, i in enumerate(t_net.line.index)}
    report_pos.update({("trafo", int(i)): len(t_net.line) + j
                       for j, i in enumerate(t_net.trafo.index)})
    rows_of_report = np.array([report_pos[(str(t), int(i))]
                               for t, i in zip(ptdf.branch_table, ptdf.branch_index, strict=False)])
    limit_mw = t_model.rating_mva[rows_of_report] * lim_cfg.T.loading_max_percent / 100.0
    tmodel = TransmissionModel(ptdf=ptdf.matrix, rows_of_report=rows_of_report, limit_mw=limit_mw,
                               bus=np.asarray(ptdf.bus, dtype=np.int64))
    first_iface = {}
    for i in split.interfaces:
        first_iface.setdefault(i.grid, i.hv_bus)
    col_of = {int(b): k for k, b in enumerate(ptdf.bus)}

    def t_col(grid: str, bus: int) -> int:
        return col_of[first_iface[grid]] if grid in first_iface else col_of[int(bus)]

    step_h = run.step_s / 3600.0
    balancing_col = col_of[int(t_net.ext_grid.bus.iloc[0])]
    portfolio = Portfolio(scenario.flexibility, assets, t_col, balancing_col, step_h)
    dmodel = distribution_model(levels, portfolio, tmodel, dso_grids, split.d_net,
                                split.interfaces)
    d_slices = levels["D"].grids
    mk = scenario.market
    distribution = DGridView(
        book=portfolio.book, slot_bus=portfolio.slot_bus, model=dmodel, grids=tuple(dso_grids),
        bus={g: d_slices[g].bus for g in dso_grids},
        branch={g: d_slices[g].branch for g in dso_grids}, limits=limits,
        voltage_margin_pu=mk.voltage_margin_pu, loading_margin_percent=mk.loading_margin_percent)
    setup = MarketSetup(book=portfolio.book.copy(), step_h=step_h, t_name=t_name,
                        transmission=tmodel, distribution=distribution,
                        penalties=scenario.penalties, market=mk, brp_imbalance=brp_imbalance)
    return RunContext(scenario=scenario, scheme=make_scheme(scheme, setup), step_s=run.step_s,
                      n_steps=n, t_name=t_name, dso_grids=tuple(dso_grids),
                      grid_order=tuple(grid_order), interfaces=tuple(split.interfaces),
                      levels=levels, limits=limits, portfolio=portfolio, market=setup,
                      level={g: ("T" if g == t_name else "D") for g in grid_order})


def distribution_model(levels: dict[str, LevelRuntime], portfolio: Portfolio,
                       tmodel: TransmissionModel, dso_grids: list[str], d_net,
                       interfaces) -> DModel:
    """What the D-aware markets and the conflict rules know of the D grids: zones (feeders),
    voltage/loading sensitivities at the first step's operating point (the markets refresh
    them as the point moves) and the D net's model to refresh them with."""
    rt = levels["D"]
    model = rt.model
    p = [rt.re_load_p[0], rt.re_load_q[0], rt.re_sgen_p[0], rt.re_sgen_q[0], rt.re_sto_p[0],
         rt.re_sto_q[0]]
    result = model.solve(*p)
    book = portfolio.book
    d_slot = np.flatnonzero(book.level == "D")
    inj_bus = np.unique(portfolio.slot_bus[d_slot])
    sens = sensitivities(model, result, inj_bus)
    zone = np.full(len(book), -1)
    zones = feeder_zones(d_net, {i.hv_bus for i in interfaces}
                         | {int(d_net.trafo.lv_bus[i.trafo]) for i in interfaces})
    zone[d_slot] = [zones.get(int(b), -1) for b in portfolio.slot_bus[d_slot]]
    # how injections anywhere move each D grid's interface (HV) voltage, which its MV buses
    # follow: sensitivities of the T grid at the same first step
    t_rt = levels["T"]
    t_model = t_rt.model
    t_res = t_model.solve(t_rt.re_load_p[0], t_rt.re_load_q[0], t_rt.re_sgen_p[0],
                          t_rt.re_sgen_q[0], t_rt.re_sto_p[0], t_rt.re_sto_q[0])
    t_cols = np.unique(book.t_bus)
    t_bus_pos = t_model.net.bus.index.get_indexer(
        [next(i.hv_bus for i in interfaces if i.grid == g) for g in dso_grids])
    t_sens = sensitivities(t_model, t_res, tmodel.bus[t_cols], bus_pos=t_bus_pos)
    hv_dv = np.zeros((len(dso_grids), len(book)))
    col_of = {int(c): j for j, c in enumerate(t_cols)}
    slot_col = np.array([col_of[int(c)] for c in book.t_bus])
    hv_dv[:, :] = t_sens.dv_dp[:, slot_col]
    return DModel(sens=sens, inj_col={int(b): j for j, b in enumerate(inj_bus)}, zone=zone,
                  capability=portfolio.capability(), hv_dv=hv_dv, grid_model=model,
                  v0=model.v.copy(), vm0=result.vm_pu.copy(),
                  loading0=result.loading_percent.copy())


def feeder_zones(net, cut_buses: set[int]) -> dict[int, int]:
    """Feeder of every bus: connected parts of the grid once the substations are cut out."""
    import networkx as nx
    from pandapower.topology import create_nxgraph

    graph = create_nxgraph(net, respect_switches=True)
    graph.remove_nodes_from(cut_buses)
    zones: dict[int, int] = {}
    for z, comp in enumerate(sorted(nx.connected_components(graph), key=min)):
        for b in comp:
            zones[int(b)] = z
    return zones


def _slack_pos(model: GridModel, hv_bus: int) -> int:
    internal = int(model.net._pd2ppc_lookups["bus"][hv_bus])
    return int(np.flatnonzero(model.ref == internal)[0])


SIM_CONFIG = {
    "Grid": {"python": "tsodso.simulators.grid:GridSim"},
    "Providers": {"python": "tsodso.simulators.providers:ProvidersSim"},
    "Coordinator": {"python": "tsodso.simulators.coordinator:CoordinatorSim"},
    "Recorder": {"python": "tsodso.simulators.recorder:RecorderSim"},
}


def build_world(ctx: RunContext, writer, timing: Timing, on_step=None):
    """Start and connect the simulators; returns the world. Each simulator gets its part of
    the run (a level, the portfolio, the scheme); the simulators add the time they spend in
    power flows and clearing to `timing`, which the runner reads after the run."""
    import mosaik
    from tsodso.simulators.mosaik_fix import apply as apply_mosaik_fix

    apply_mosaik_fix()
    loops = 4 * ctx.scenario.coupling.max_iterations + 10
    world = mosaik.World(SIM_CONFIG, max_loop_iterations=loops, skip_greetings=True,
                         configure_logging=False)
    with world.group():
        coupling = ctx.scenario.coupling
        ctl, lim_t = ctx.scenario.control, ctx.scenario.limits.T
        setpoint = SetpointControl(lim_t.vm_min_pu, lim_t.vm_max_pu, ctl.setpoint_margin_pu,
                                   ctl.max_setpoint_change_pu) if ctl.tso_setpoint else None
        tsim = world.start("Grid", runtime=ctx.levels["T"], step_s=ctx.step_s,
                           tolerance_mw=coupling.tolerance_mw,
                           max_iterations=coupling.max_iterations, timing=timing,
                           setpoint=setpoint)
        target = ctx.scenario.grid.mv_busbar_pu
        taps = TapSettings(target, ctl.tap_deadband_pu, ctl.max_tap_moves) \
            if ctl.dso_taps and target is not None else None
        dsim = world.start("Grid", runtime=ctx.levels["D"], step_s=ctx.step_s,
                           tolerance_mw=coupling.tolerance_mw,
                           max_iterations=coupling.max_iterations, timing=timing, taps=taps)
        psim = world.start("Providers", portfolio=ctx.portfolio, step_s=ctx.step_s,
                           until=ctx.until)
        csim = world.start("Coordinator", ctx=ctx, timing=timing)
        t_ent = tsim.Grid()  # one entity per level, for all its grids (simulators/grid.py)
        d_ents = [dsim.Grid()] if ctx.dso_grids else []
        prov = psim.Providers()
        coord = csim.Coordinator()
    rsim = world.start("Recorder", writer=writer, on_step=on_step)
    rec = rsim.Recorder()
    world.connect(prov, coord, "bids")
    world.connect(coord, prov, "activations", weak=True)
    world.connect(prov, t_ent, "setpoints")
    world.connect(t_ent, coord, "report")
    for d in d_ents:
        world.connect(prov, d, "setpoints")
        world.connect(d, t_ent, "interface_s")
        world.connect(t_ent, d, "interface_v", weak=True)
        world.connect(d, coord, ("report", "d_report"))
    world.connect(coord, rec, "record")
    log.info("running %d steps of %d s", ctx.n_steps, ctx.step_s)
    return world
