"""Built-in small coupled T+D test case ("tiny") with a deterministic year of profiles.

The net copies the conventions of SimBench ``1-HVMV-mixed-all-2-sw`` so that code written for the
real case runs on it unchanged, but it has 24 buses and builds in a fraction of a second:

* ``bus.subnet`` names the level: ``"EHV1_HV1"`` (EHV stub with the ext_grid), ``"HV1"`` (the
  TSO's 110 kV grid), ``"HV1_<grid>"`` (110 kV side of a TSO-DSO substation, still T) and
  ``"<grid>"`` / ``"<grid>_Feeder1"`` for the 20 kV buses of distribution grid ``<grid>``; the part
  before the first ``"_"`` names the grid.
* Each D grid (``MV1.101`` PV-heavy rural, ``MV2.101`` load-heavy with wind) hangs on ONE
  110/20 kV transformer: the TSO-DSO interface (hv bus subnet ``"HV1_<grid>"``, lv bus
  ``"<grid>"``).
* Element tables carry the SimBench columns the project uses (``subnet``, ``type``, ``profile``,
  ``sn_mva``, storage energy/power limits, bus voltage band, line ``max_loading_percent``).
* Element ``p_mw`` is the rating: installed power for sgens, peak power for loads, so the
  forecast-error model can take its ratings straight from the net.

Profiles have the format of ``simbench.get_absolute_values(net, True)``: a dict keyed by
``("load", "p_mw")``, ``("load", "q_mvar")``, ``("sgen", "p_mw")``, ``("gen", "p_mw")``,
``("storage", "p_mw")`` of DataFrames with 35,136 quarter-hour rows (leap year 2016, 366 days)
and one column per element index. They are smooth daily/seasonal shapes plus noise from a fixed
seed, so every call returns identical data. Storage follows the pandapower sign convention
(positive = charging), within ``[min_p_mw, max_p_mw]``, and its energy stays within
``[min_e_mwh, max_e_mwh]`` when integrated from ``soc_percent``.

Sized so that a year holds real problems while the base AC power flow converges at every step
(checked with ``pp.runpp`` on all 35,136 steps): summer-noon PV overloads a 20 kV cable in
``MV1.101`` (max 123 %, 28 h a year) and lifts its voltages above 1.05 pu (470 h, max 1.096);
wind at the end of the ``MV2.101`` feeder lifts voltages above 1.05 pu (467 h, max 1.073) and
winter evenings pull them below 0.95 pu (176 h, min 0.921); strong wind loads the 110 kV export
corridor to the EHV link above 90 % for 352 h (max 105 %). D violations occur in 12 % of steps.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pandapower as pp
import pandas as pd
from numpy.random import PCG64, Generator
from scipy.signal import lfilter

__all__ = [
    "D_GRIDS",
    "N_STEPS",
    "PROFILE_SEED",
    "STEP_S",
    "apply_profile_step",
    "build_tiny",
    "build_tiny_net",
    "tiny_profiles_year",
]

N_STEPS = 35_136
"""Quarter-hours in the profile year (2016 is a leap year: 366 days x 96 steps), as in SimBench."""
STEP_S = 900
"""Profile resolution in seconds."""
PROFILE_SEED = 20_160_101
"""Fixed seed of the profile noise: the profiles are part of the case, not of a run."""
D_GRIDS = ("MV1.101", "MV2.101")
"""Names of the two distribution grids."""

_STEPS_PER_DAY = 96
_DAYS = N_STEPS // _STEPS_PER_DAY
_FIRST_WEEKDAY = 4  # 2016-01-01 was a Friday (Monday = 0)
_SOLSTICE_DAY = 172  # day index of 21 June 2016

# HV and MV line types from the pandapower standard library (the ones SimBench grids use).
_HV_MAIN = "243-AL1/39-ST1A 110.0"  # 0.645 kA, ~123 MVA at 110 kV
_HV_CORRIDOR = "48-AL1/8-ST1A 110.0"  # 0.21 kA, ~40 MVA: the export corridor to the EHV link
_MV_TRUNK = "NA2XS2Y 1x120 RM/25 12/20 kV"  # 0.283 kA, ~9.8 MVA at 20 kV
_MV_BRANCH = "NA2XS2Y 1x70 RM/25 12/20 kV"  # 0.22 kA, ~7.6 MVA at 20 kV

# Distribution grid layouts: per feeder bus (1..n) the line from the previous bus (type, km),
# the load peak (MW) and the generation connected there (type, MW).
_D_LAYOUT: dict[str, dict] = {
    "MV1.101": {  # rural, PV-heavy: summer noon overload + overvoltage
        "trafo": "25 MVA 110/20 kV",
        "hv_bus": "HV1 Bus 3",
        "lines": [(_MV_TRUNK, 2.0), (_MV_TRUNK, 1.5), (_MV_BRANCH, 2.0), (_MV_BRANCH, 1.5),
                  (_MV_BRANCH, 2.0), (_MV_BRANCH, 1.5)],
        "loads": [0.6, 0.5, 0.7, 0.4, 0.5, 0.4],
        "sgens": [(2, "PV_MV", 2.0), (4, "Wind_MV", 3.5), (5, "PV_MV", 4.5), (6, "PV_MV", 4.0)],
        "storage": (5, 1.0, 2.0),  # (bus, MW, MWh)
    },
    "MV2.101": {  # semi-urban, load-heavy with a wind park at the feeder end
        "trafo": "25 MVA 110/20 kV",
        "hv_bus": "HV1 Bus 5",
        "lines": [(_MV_TRUNK, 2.0), (_MV_TRUNK, 2.0), (_MV_TRUNK, 2.5), (_MV_BRANCH, 2.5),
                  (_MV_BRANCH, 2.5), (_MV_BRANCH, 2.0), (_MV_BRANCH, 2.0)],
        "loads": [1.3, 1.2, 1.3, 1.1, 1.0, 1.2, 1.0],
        "sgens": [(3, "PV_MV", 1.5), (6, "PV_MV", 1.0), (7, "Wind_MV", 5.0)],
        "storage": (4, 1.5, 3.0),
    },
}

_HV_LOAD_MW = 30.0
_HV_WIND_MW = 60.0
_HV_STORAGE = (10.0, 20.0)  # MW, MWh
_LOAD_PF = {"HV1": 0.97, "MV": 0.95}


def build_tiny() -> tuple[pp.pandapowerNet, dict[tuple[str, str], pd.DataFrame]]:
    """Return the tiny net and its year of profiles (SimBench ``get_absolute_values`` format).

    Built once per process (~0.3 s, most of it pandapower's table set-up) and handed out as
    fresh copies (~10 ms), so callers may modify what they get."""
    net, profiles = _tiny_cached()
    return copy.deepcopy(net), {key: df.copy() for key, df in profiles.items()}


@functools.lru_cache(maxsize=1)
def _tiny_cached() -> tuple[pp.pandapowerNet, dict[tuple[str, str], pd.DataFrame]]:
    net = build_tiny_net()
    return net, tiny_profiles_year(net)


def build_tiny_net() -> pp.pandapowerNet:
    """Build the tiny coupled net: EHV stub, meshed 110 kV T grid, two radial 20 kV D grids."""
    net = pp.create_empty_network(name="tiny", f_hz=50.0, sn_mva=1.0)
    bus: dict[str, int] = {}

    def add_bus(name: str, vn_kv: float, subnet: str, vmin: float, vmax: float, lvl: int) -> int:
        bus[name] = pp.create_bus(net, vn_kv, name=name, type="b", zone=None, min_vm_pu=vmin,
                                  max_vm_pu=vmax, subnet=subnet, voltLvl=lvl)
        return bus[name]

    # EHV stub: one 380 kV bus with the slack and one 380/110 kV transformer.
    ehv = add_bus("EHV Bus 1", 380.0, "EHV1_HV1", 0.9, 1.1, 1)
    pp.create_ext_grid(net, ehv, vm_pu=1.0, va_degree=0.0, name="EHV Ext_grid 1",
                       subnet="HV1_EHV1_eq", voltLvl=1, phys_type="ExternalNet")
    for i in range(1, 7):
        add_bus(f"HV1 Bus {i}", 110.0, "HV1", 0.9, 1.1, 3)
    pp.create_transformer_from_parameters(
        net, ehv, bus["HV1 Bus 1"], sn_mva=350.0, vn_hv_kv=380.0, vn_lv_kv=110.0,
        vkr_percent=0.257143, vk_percent=22.0, pfe_kw=120.0, i0_percent=0.06, shift_degree=0.0,
        tap_side="hv", tap_neutral=0, tap_min=-16, tap_max=16, tap_step_percent=1.0,
        tap_step_degree=0.0, tap_pos=0, name="HV1 Trafo 1", max_loading_percent=100.0,
        std_type="350MVA_380/110", subnet="HV1", voltLvl=2)

    # Meshed 110 kV grid: bus 1 (EHV link) reaches the rest through the corridor lines 1-2 and
    # 1-6; ring 2-3-4-5-6 with chord 3-5. Load at bus 1, wind farm at bus 4, D grids at 3 and 5.
    hv_lines = [(1, 2, _HV_CORRIDOR, 15.0), (1, 6, _HV_CORRIDOR, 8.0), (2, 3, _HV_MAIN, 18.0),
                (3, 4, _HV_MAIN, 20.0), (4, 5, _HV_MAIN, 16.0), (5, 6, _HV_MAIN, 14.0),
                (3, 5, _HV_MAIN, 22.0)]
    for k, (a, b, std, km) in enumerate(hv_lines, start=1):
        pp.create_line(net, bus[f"HV1 Bus {a}"], bus[f"HV1 Bus {b}"], km, std,
                       name=f"HV1 Line {k}", max_loading_percent=100.0, subnet="HV1", voltLvl=3)

    hv_pf = np.tan(np.arccos(_LOAD_PF["HV1"]))
    pp.create_load(net, bus["HV1 Bus 1"], _HV_LOAD_MW, _HV_LOAD_MW * hv_pf, name="HV1 Load 1",
                   sn_mva=_HV_LOAD_MW / _LOAD_PF["HV1"], subnet="HV1", voltLvl=3,
                   profile="tiny_hv_load")
    pp.create_sgen(net, bus["HV1 Bus 4"], _HV_WIND_MW, 0.0, sn_mva=_HV_WIND_MW,
                   name="HV1 Wind 1", type="Wind", subnet="HV1", voltLvl=3, phys_type="RES",
                   profile="tiny_wind_hv")
    _add_storage(net, bus["HV1 Bus 4"], *_HV_STORAGE, name="HV1 Storage 1", subnet="HV1",
                 lvl=3, kind="Wind_Storage")

    # Distribution grids behind one HV/MV transformer each.
    mv_pf = np.tan(np.arccos(_LOAD_PF["MV"]))
    for grid, lay in _D_LAYOUT.items():
        sub = add_bus(f"HV1 Bus {grid}", 110.0, f"HV1_{grid}", 0.9, 1.1, 3)
        pp.create_line(net, bus[lay["hv_bus"]], sub, 3.0, _HV_MAIN, name=f"HV1 Line {grid}",
                       max_loading_percent=100.0, subnet="HV1", voltLvl=3)
        bb = add_bus(f"{grid} busbar", 20.0, grid, 0.95, 1.05, 5)
        pp.create_transformer(net, sub, bb, lay["trafo"], name=f"HV1-{grid}-Trafo1",
                              max_loading_percent=100.0, subnet=grid, voltLvl=4)
        prev = bb
        feeder = []
        for i, (std, km) in enumerate(lay["lines"], start=1):
            b = add_bus(f"{grid} Bus {i}", 20.0, f"{grid}_Feeder1", 0.95, 1.05, 5)
            pp.create_line(net, prev, b, km, std, name=f"{grid} Line {i}",
                           max_loading_percent=100.0, subnet=f"{grid}_Feeder1", voltLvl=5)
            feeder.append(b)
            prev = b
        for i, peak in enumerate(lay["loads"], start=1):
            pp.create_load(net, feeder[i - 1], peak, peak * mv_pf, name=f"{grid} Load {i}",
                           sn_mva=peak / _LOAD_PF["MV"], subnet=f"{grid}_Feeder1", voltLvl=5,
                           profile="tiny_mv_load")
        counters: dict[str, int] = {}
        for at, typ, mw in lay["sgens"]:
            label = "PV" if typ.startswith("PV") else "Wind"
            counters[label] = counters.get(label, 0) + 1
            pp.create_sgen(net, feeder[at - 1], mw, 0.0, sn_mva=mw,
                           name=f"{grid} {label} {counters[label]}", type=typ,
                           subnet=f"{grid}_Feeder1", voltLvl=5, phys_type="RES",
                           profile=f"tiny_{label.lower()}_mv")
        at, mw, mwh = lay["storage"]
        _add_storage(net, feeder[at - 1], mw, mwh, name=f"{grid} Storage 1",
                     subnet=f"{grid}_Feeder1", lvl=5, kind="PV_Storage_MV")
    return net


def _add_storage(net: pp.pandapowerNet, bus: int, mw: float, mwh: float, *, name: str,
                 subnet: str, lvl: int, kind: str) -> None:
    """Storage unit in pandapower convention (p > 0 charges), empty at the start of the year.
    ``efficiency_percent`` holds a fraction (0.95), exactly as SimBench fills that column."""
    pp.create_storage(net, bus, 0.0, mwh, q_mvar=0.0, sn_mva=mw, soc_percent=0.0, min_e_mwh=0.0,
                      name=name, type=kind, max_p_mw=mw, min_p_mw=-mw, max_q_mvar=mw,
                      min_q_mvar=-mw, subnet=subnet, voltLvl=lvl, efficiency_percent=0.95,
                      profile="tiny_storage", **{"self-discharge_percent_per_day": 0.13})


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def _ar1(rng: Generator, n: int, rho: float) -> np.ndarray:
    """Stationary unit-variance AR(1) series of length n (first value from N(0, 1))."""
    eps = rng.standard_normal(n)
    eps[0] /= np.sqrt(1.0 - rho * rho)
    return lfilter([np.sqrt(1.0 - rho * rho)], [1.0, -rho], eps)


def _calendar() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hour of day, day index, summer index (1 at the solstice, -1 in midwinter), weekend flag."""
    t = np.arange(N_STEPS)
    hour = (t % _STEPS_PER_DAY) / 4.0 + 0.125  # middle of the quarter-hour
    day = t // _STEPS_PER_DAY
    summer = np.cos(2.0 * np.pi * (day - _SOLSTICE_DAY) / _DAYS)
    weekend = (day + _FIRST_WEEKDAY) % 7 >= 5
    return hour, day, summer, weekend


def _pv_shape(hour: np.ndarray, day: np.ndarray, summer: np.ndarray, rng: Generator,
              n_units: int) -> np.ndarray:
    """Per-unit PV output (N_STEPS, n_units): clear-sky arc times a shared cloud factor."""
    daylength = 12.2 + 4.3 * summer  # ~8 h in December, ~16.5 h in June (northern Germany)
    rise = 12.25 - daylength / 2.0
    arc = np.clip(np.sin(np.pi * (hour - rise) / daylength), 0.0, None)
    arc[(hour < rise) | (hour > rise + daylength)] = 0.0
    amplitude = 0.6 + 0.3 * summer  # peak of a clear day as a fraction of installed power
    daily = _ar1(rng, _DAYS, 0.5)[day]  # day-to-day weather, shared by all units
    clear = np.clip(0.62 + 0.3 * daily + 0.1 * summer, 0.1, 1.0)
    fast = _ar1(rng, N_STEPS, 0.8)  # passing clouds, shared
    cloud = np.clip(clear + 0.35 * (1.0 - clear) * fast, 0.05, 1.0)
    base = amplitude * arc**1.3 * cloud
    out = np.empty((N_STEPS, n_units))
    for j in range(n_units):  # small unit-specific deviations (orientation, local clouds)
        local = 1.0 + 0.04 * _ar1(rng, N_STEPS, 0.9)
        out[:, j] = np.clip(base * local, 0.0, 1.0)
    return out


def _wind_shape(summer: np.ndarray, rng: Generator, n_units: int) -> np.ndarray:
    """Per-unit wind output (N_STEPS, n_units) from a shared synoptic wind speed and a cubic
    power curve (cut-in 3 m/s, rated 12.5 m/s, cut-out 25 m/s)."""
    synoptic = _ar1(rng, N_STEPS, 0.997)  # ~3-day weather systems
    mean = 7.2 - 1.4 * summer  # windier winters
    out = np.empty((N_STEPS, n_units))
    for j in range(n_units):
        local = _ar1(rng, N_STEPS, 0.98)
        v = np.clip(mean + 3.2 * (0.85 * synoptic + 0.527 * local), 0.0, None)
        p = np.clip((v**3 - 27.0) / (12.5**3 - 27.0), 0.0, 1.0)
        p[v > 25.0] = 0.0
        out[:, j] = p
    return out


def _load_shape(hour: np.ndarray, summer: np.ndarray, weekend: np.ndarray, rng: Generator,
                n_units: int) -> np.ndarray:
    """Per-unit load (N_STEPS, n_units), max 1: night trough, morning and evening peaks,
    lower at weekends and in summer."""
    morning = np.exp(-(((hour - 8.0) / 2.0) ** 2))
    evening = np.exp(-(((hour - 18.5 - 0.8 * summer) / 2.2) ** 2))
    day_plateau = 1.0 / (1.0 + np.exp(-(hour - 6.5) * 2.0)) / (1.0 + np.exp((hour - 21.5) * 1.5))
    shape = 0.38 + 0.22 * day_plateau + 0.18 * morning + (0.32 - 0.12 * summer) * evening
    shape *= (1.0 - 0.12 * weekend) * (1.0 - 0.12 * summer)
    out = np.empty((N_STEPS, n_units))
    for j in range(n_units):
        noisy = shape * (1.0 + 0.05 * _ar1(rng, N_STEPS, 0.85))
        out[:, j] = noisy / noisy.max()
    return out


def _storage_schedule(pv: np.ndarray, mw: float, mwh: float) -> np.ndarray:
    """Charge with the PV arc (up to 80 % of capacity a day), discharge 17:00-21:00."""
    pv_day = pv.reshape(_DAYS, _STEPS_PER_DAY)
    daily_sun = pv_day.sum(axis=1) / _STEPS_PER_DAY / max(pv.max(), 1e-9)  # 0..~0.3
    target = 0.8 * mwh * np.clip(daily_sun / 0.25, 0.0, 1.0)  # MWh to charge per day
    weight = pv_day / np.maximum(pv_day.sum(axis=1, keepdims=True), 1e-12)
    charge = np.minimum(target[:, None] * weight / 0.25, mw)  # MW, within the rating
    energy = charge.sum(axis=1) * 0.25
    discharge = np.zeros_like(charge)
    discharge[:, 68:84] = -(energy / 4.0)[:, None]  # 17:00-21:00, 16 steps
    return (charge + discharge).reshape(-1)


def tiny_profiles_year(net: pp.pandapowerNet) -> dict[tuple[str, str], pd.DataFrame]:
    """Year of quarter-hour profiles for a net built by :func:`build_tiny_net` (absolute MW/Mvar,
    columns = element indices). Deterministic: the noise comes from ``PROFILE_SEED``."""
    rng = Generator(PCG64(PROFILE_SEED))
    hour, day, summer, weekend = _calendar()
    index = pd.RangeIndex(N_STEPS)

    # Loads: one shape family, each with its own noise; q follows p at the load's power factor.
    loads = net.load
    shapes = _load_shape(hour, summer, weekend, rng, len(loads))
    load_p = shapes * loads.p_mw.to_numpy()[None, :]
    tan_phi = (loads.q_mvar / loads.p_mw).to_numpy()
    load_q = load_p * tan_phi[None, :]

    sgens = net.sgen
    is_pv = sgens.type.str.startswith("PV").to_numpy()
    pv = _pv_shape(hour, day, summer, rng, int(is_pv.sum()))
    wind = _wind_shape(summer, rng, int((~is_pv).sum()))
    sgen_p = np.empty((N_STEPS, len(sgens)))
    sgen_p[:, is_pv] = pv
    sgen_p[:, ~is_pv] = wind
    sgen_p *= sgens.p_mw.to_numpy()[None, :]

    pv_mean = pv.mean(axis=1)
    storage_p = np.column_stack([
        _storage_schedule(pv_mean, row.max_p_mw, row.max_e_mwh)
        for row in net.storage.itertuples()
    ]) if len(net.storage) else np.zeros((N_STEPS, 0))

    def frame(values: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=pd.Index(table.index, dtype="int64"))

    return {
        ("load", "p_mw"): frame(load_p, loads),
        ("load", "q_mvar"): frame(load_q, loads),
        ("sgen", "p_mw"): frame(sgen_p, sgens),
        ("gen", "p_mw"): frame(np.zeros((N_STEPS, len(net.gen))), net.gen),
        ("storage", "p_mw"): frame(storage_p, net.storage),
    }


def apply_profile_step(net: pp.pandapowerNet, profiles: dict[tuple[str, str], pd.DataFrame],
                       step: int) -> None:
    """Write one profile row into the element tables (p_mw / q_mvar), in place."""
    for (element, column), df in profiles.items():
        if df.shape[1]:
            net[element].loc[df.columns, column] = df.iloc[step].to_numpy()
