"""Grid sources other than the SimBench download: own pandapower nets with their own time
series, and the quick checks `tsodso validate` runs on every grid source.

An own grid (`grid.source = "pandapower"`) is a net saved with `pandapower.to_json`, its
TSO-DSO interfaces (transformer indices, or every transformer from `grid.interface_kv` down),
and a profile file (CSV or Parquet) with one column per element and quantity
(`load.3.p_mw`, `sgen.7.p_mw`, `storage.0.p_mw`, optional `load.3.q_mvar`) or SimBench's
layout (`<profile>_pload` / `<profile>_qload` for loads, `<profile>` for sgens and storages,
relative to the element's rated value). Rows are `grid.profiles_step_s` apart from
`grid.profiles_start`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from tsodso.scenarios.load import ScenarioError
from tsodso.scenarios.schema import PROFILE_START, PROFILE_STEP_S, Scenario

#: Element tables and the quantities an own profile file may carry (p is required).
PROFILE_TABLES: tuple[str, ...] = ("load", "sgen", "storage")
QUANTITIES: tuple[str, ...] = ("p_mw", "q_mvar")


@functools.cache
def simbench_codes() -> frozenset[str]:
    """The SimBench codes of simbench 1.6.3 (`simbench.collect_all_simbench_codes()`), read
    from a list shipped with tsodso: importing simbench takes seconds."""
    text = (resources.files("tsodso.scenarios") / "simbench_codes.txt").read_text()
    return frozenset(s for line in text.splitlines() if (s := line.strip()) and s[0] != "#")


def check_simbench_code(code: str) -> None:
    """One-line error for a code SimBench does not know or tsodso cannot split."""
    if code not in simbench_codes():
        raise ScenarioError(
            f"grid.code: unknown SimBench grid code '{code}' "
            f"(e.g. '1-HVMV-mixed-all-2-sw'; all: simbench.collect_all_simbench_codes())")
    level = code.split("-")[1]
    if level != "HVMV":
        raise ScenarioError(
            f"grid.code: SimBench grid '{code}' is not an HV/MV grid; tsodso splits a grid at "
            f"its HV/MV transformers into the TSO's HV grid and the DSOs' MV grids, so the "
            f"code must have the voltage level 'HVMV' (e.g. '1-HVMV-mixed-all-2-sw')")


# --- own grids -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Where the run sits in its profiles: the row of the first step and rows per step."""

    first_row: int
    stride: int
    rows: int  # rows the profiles have (-1: not known without reading them)


def calendar(scenario: Scenario, n_rows: int = -1) -> Calendar:
    """Profile rows of the run: SimBench and tiny run on the 2016 quarter hours; own grids on
    their profile file's rows. Raises ScenarioError if the window is not on the profile grid
    or (with `n_rows` known) outside the profiles."""
    run, grid = scenario.run, scenario.grid
    if grid.source != "pandapower":
        return Calendar(run.first_row, run.stride, n_rows)
    start = grid.profiles_start or PROFILE_START
    step = grid.profiles_step_s or PROFILE_STEP_S
    offset = (run.start - start).total_seconds()
    if offset < 0 or offset % step:
        raise ScenarioError(
            f"run.start {run.start.isoformat()} is not a profile row (profiles start "
            f"{start.isoformat()} every {step} s)")
    if run.step_s % step:
        raise ScenarioError(
            f"run.step_s {run.step_s} is not a multiple of grid.profiles_step_s {step}")
    cal = Calendar(int(offset // step), run.step_s // step, n_rows)
    last = cal.first_row + (run.steps - 1) * cal.stride
    if n_rows >= 0 and last >= n_rows:
        end = start + timedelta(seconds=(n_rows - 1) * step)
        raise ScenarioError(
            f"run window {run.start.isoformat()} + {run.steps} steps of {run.step_s} s "
            f"runs past the end of the profiles ({n_rows} rows, last {end.isoformat()})")
    return cal


def error_start(scenario: Scenario) -> int:
    """The quarter hour of the run's first step in the forecast error stream: absolute in
    the 2016 year for SimBench and tiny, from the profile start for own grids."""
    run, grid = scenario.run, scenario.grid
    if grid.source != "pandapower":
        return run.first_row
    start = grid.profiles_start or PROFILE_START
    return int((run.start - start).total_seconds() // PROFILE_STEP_S)


def read_net(path: str):
    """The pandapower net of `grid.file`, or a one-line ScenarioError."""
    import pandapower as pp

    if not Path(path).is_file():
        raise ScenarioError(f"grid.file: no such file '{path}'")
    try:
        return pp.from_json(path)
    except Exception as exc:  # pandapower raises assorted errors for bad files
        raise ScenarioError(f"grid.file: '{path}' is not a pandapower JSON net: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                            ) from None


def interface_trafos(scenario: Scenario, net) -> list[int] | None:
    """The TSO-DSO interface transformers of an own grid (None: SimBench's `bus.subnet`)."""
    grid = scenario.grid
    if grid.source != "pandapower":
        return None
    if grid.interfaces is not None:
        unknown = [t for t in grid.interfaces if t not in net.trafo.index]
        if unknown:
            raise ScenarioError(f"grid.interfaces: no transformer {unknown[0]} in the net "
                                f"(transformers: {list(net.trafo.index)[:20]})")
        return sorted(int(t) for t in grid.interfaces)
    if grid.interface_kv is not None:
        kv = net.bus.vn_kv
        hv = kv.reindex(net.trafo.hv_bus).to_numpy()
        lv = kv.reindex(net.trafo.lv_bus).to_numpy()
        tol = 1e-6 * grid.interface_kv
        chosen = net.trafo.index[(hv >= grid.interface_kv - tol) & (lv < grid.interface_kv - tol)
                                 & net.trafo.in_service.to_numpy(bool)]
        if not len(chosen):
            raise ScenarioError(f"grid.interface_kv: no transformer in service has its HV side "
                                f"at or above {grid.interface_kv} kV and its LV side below")
        return sorted(int(t) for t in chosen)
    if "subnet" in net.bus:
        return None  # a net with SimBench's subnet names splits like SimBench
    raise ScenarioError("grid: an own net needs grid.interfaces (transformer indices) or "
                        "grid.interface_kv (the T grid's voltage level)")


def read_table(path: str):
    """The profile file as a DataFrame (CSV: ',' or ';' separated; Parquet)."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"grid.profiles: no such file '{path}'")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, sep=None, engine="python")
    except Exception as exc:
        raise ScenarioError(f"grid.profiles: cannot read '{path}': {exc}") from None


def profiles_from_table(df, net, source: str = "grid.profiles") -> dict[tuple[str, str], Any]:
    """Absolute profiles per (table, quantity), columns = element indices, from a table with
    `table.index.quantity` columns or SimBench's relative `<profile>_pload` layout."""
    import pandas as pd

    df = df.drop(columns=[c for c in df.columns if str(c).lower() in ("time", "timestamp")])
    out: dict[tuple[str, str], dict[int, Any]] = {}
    unused: list[str] = []
    for col in df.columns:
        parts = str(col).split(".")
        if len(parts) == 3 and parts[0] in PROFILE_TABLES and parts[2] in QUANTITIES:
            table, idx, qty = parts
            try:
                element = int(idx)
            except ValueError:
                unused.append(str(col))
                continue
            if element not in net[table].index:
                raise ScenarioError(f"{source}: column '{col}': no {table} {element} in the net")
            out.setdefault((table, qty), {})[element] = df[col].astype(float)
        else:
            unused.append(str(col))
    # SimBench's layout: relative profiles named in the elements' `profile` column
    if unused:
        named = set(unused)
        for table in PROFILE_TABLES:
            elements = net[table]
            if "profile" not in elements or not len(elements):
                continue
            for element, prof in elements.profile.items():
                for qty, suffix, rated in (("p_mw", ("_pload", ""), "p_mw"),
                                           ("q_mvar", ("_qload",), "q_mvar")):
                    if table != "load" and qty == "q_mvar":
                        continue
                    name = next((f"{prof}{s}" for s in suffix if f"{prof}{s}" in named), None)
                    if name is None or int(element) in out.get((table, qty), {}):
                        continue
                    scale = float(elements.at[element, rated])
                    out.setdefault((table, qty), {})[int(element)] = \
                        df[name].astype(float) * scale
    return {key: pd.DataFrame(cols).reset_index(drop=True) for key, cols in out.items()}


def check_profiles(profiles: dict[tuple[str, str], Any], net, source: str = "grid.profiles"
                   ) -> int:
    """Every load, sgen and storage has an active-power profile; all columns are numbers
    of one length. Returns the number of rows."""
    import numpy as np

    lengths = {len(df) for df in profiles.values()}
    if len(lengths) > 1:
        raise ScenarioError(f"{source}: profile columns differ in length")
    for table in PROFILE_TABLES:
        have = profiles.get((table, "p_mw"))
        for element in net[table].index:
            if have is None or element not in have.columns:
                raise ScenarioError(f"{source}: no profile for {table} {element} "
                                    f"(a column '{table}.{element}.p_mw')")
    for (table, qty), df in profiles.items():
        bad = ~np.isfinite(df.to_numpy(float))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ScenarioError(f"{source}: {table}.{df.columns[col]}.{qty}: "
                                f"not a number in row {row}")
    return lengths.pop() if lengths else 0


#: Columns the set-up reads that a net built with pandapower's create functions may lack
#: (SimBench nets have them): table -> column -> fill value.
OPTIONAL_COLUMNS: dict[str, dict[str, Any]] = {
    "storage": {"max_p_mw": float("nan"), "min_e_mwh": 0.0, "max_e_mwh": 0.0,
                "soc_percent": 50.0},
    "sgen": {"type": None},
}


def normalise(net) -> None:
    """Add the optional columns the set-up reads, where the net lacks them, and give buses
    and branches unique names (results files name them): an element without a name, or with
    a name another element of its kind also has, is named '<table> <index>'."""
    for table, columns in OPTIONAL_COLUMNS.items():
        for col, value in columns.items():
            if col not in net[table]:
                net[table][col] = value
    for tables in (("bus",), ("line", "trafo")):
        taken: dict[str, int] = {}
        for table in tables:
            for name in net[table].name:
                if name is not None and name == name:  # not None / NaN
                    taken[str(name)] = taken.get(str(name), 0) + 1
        for table in tables:
            names = net[table].name.astype(object)
            bad = [i for i, n in names.items()
                   if n is None or n != n or taken.get(str(n), 0) > 1]
            for i in bad:
                names.at[i] = f"{table} {i}"
            net[table]["name"] = names


def load_own(scenario: Scenario):
    """The own net and its profiles (absolute, per (table, quantity)), checked."""
    grid = scenario.grid
    net = read_net(grid.file)
    normalise(net)
    profiles = profiles_from_table(read_table(grid.profiles), net)
    n_rows = check_profiles(profiles, net)
    calendar(scenario, n_rows)
    return net, profiles


def check_split(scenario: Scenario, net) -> None:
    """At least one T and one D grid; every D grid reaches the T grid through an interface;
    every load, sgen and storage belongs to a grid. One-line ScenarioError otherwise."""
    from tsodso.scenarios.split import bus_grids, split_net

    if not len(net.ext_grid):
        raise ScenarioError("grid: the net has no ext_grid (the T grid's link to the rest of "
                            "the system)")
    trafos = interface_trafos(scenario, net)
    try:
        t_name, grid_of = bus_grids(net, trafos)
        split = split_net(net, trafos)
    except ValueError as exc:
        raise ScenarioError(f"grid: {exc}") from None
    if not split.d_buses:
        raise ScenarioError("grid: no D grid (no transformer from the T grid to a lower level)")
    for table in PROFILE_TABLES:
        lost = [int(i) for i, b in net[table].bus.items() if int(b) not in grid_of]
        if lost:
            raise ScenarioError(f"grid: {table} {lost[0]} is connected to neither the T grid "
                                f"nor a D grid")


def check_grid(scenario: Scenario) -> None:
    """What `tsodso validate` checks beyond the file: SimBench codes against the list of codes
    (without loading the grid), own grids fully (net, interfaces, split, profiles, window)."""
    source = scenario.grid.source
    if source == "simbench":
        check_simbench_code(scenario.grid.code)
    elif source == "pandapower":
        import logging
        import warnings

        logging.getLogger("pandapower").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net, _ = load_own(scenario)
            check_split(scenario, net)
