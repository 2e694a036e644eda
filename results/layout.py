"""The layout of a results file (format "tsodso-results", see results/format.py and
docs/results-format.md): the run's description, and every group, dataset and attribute of the
file, created up front because HDF5 SWMR mode forbids creating them later. The writer
(`writer.py`) fills the datasets block by block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import h5py
import numpy as np
from tsodso.core.vocabulary import COST_COLUMNS, UNSERVED_KEYS
from tsodso.results.format import (
    COST_DESCRIPTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    TABLE_COLUMNS,
    TABLE_STR_BYTES,
    UNSERVED_DESCRIPTIONS,
    UNSERVED_UNITS,
)

_TABLE_CHUNK_ROWS = 4096
_MAX_COL_CHUNK = 256
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
# No HDF5 chunk cache: blocks are written whole, and with the default cache (1 MiB per
# dataset) the resident memory of a run grew with its length (about 120 MiB over a month of
# default, ~130 datasets)
NO_CHUNK_CACHE = {"rdcc_nbytes": 0}
_NAME_DTYPE = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class GridLayout:
    """Names of the buses and branches of one grid, in the column order of its arrays."""

    name: str  # e.g. "HV1" or "MV1.101"
    level: str  # "T" or "D"
    bus: list[str]  # bus names
    branch: list[str]  # branch names (lines then transformers)


@dataclass(frozen=True)
class RunMeta:
    """Run description stored as root attributes (and per-grid limit attributes)."""

    scheme: str
    scenario: str
    seed: int
    start: datetime
    step_s: int
    n_steps: int
    software_version: str
    scenario_toml: str
    limits: dict[str, tuple[float, float, float]]  # level -> (vm_min_pu, vm_max_pu, loading_max_%)
    # The scheme describes itself, so that readers never branch on scheme names:
    scheme_label: str = ""  # plain-language name, e.g. "Common TSO–DSO market"
    scheme_short: str = ""  # short name for tables
    scheme_description: str = ""  # what the scheme does, with notes specific to this run
    scheme_counterfactual: bool = False  # the no-coordination baseline others are measured by
    scheme_balances_areas: bool = False  # DSOs keep their interface on its agreed schedule
    scheme_order: int = 100  # sort position in reports when no summary.csv gives an order
    scheme_operator: str = ""  # who clears the scheme's market(s)
    builtin: str = ""  # built-in scenario reproducing this run with its steps and seed, or ""


class Series:
    """One time-axis dataset and its in-memory block buffer."""

    def __init__(self, ds: h5py.Dataset, block: int) -> None:
        self.ds = ds
        self.buf = np.empty((block, *ds.shape[1:]), dtype=ds.dtype)


def cf_time_units(start: datetime) -> str:
    """CF units of /time: ``seconds since <start>`` (ISO, local time of the scenario)."""
    return f"seconds since {start.isoformat(sep=' ')}"


def check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid {what} name {name!r} (non-empty, no '/')")



class FileLayout:
    """Creates the layout of one run's file and holds its growing datasets: the root's
    ``time``, the groups' own time scales (``times``), the time series with their block
    buffers (``series``, by dataset path) and the table columns (``table_ds``)."""

    def __init__(self, meta: RunMeta, grids: list[GridLayout], block_steps: int) -> None:
        self.meta = meta
        self.grids = list(grids)
        self.block_steps = block_steps
        self.time: h5py.Dataset | None = None
        self.times: list[h5py.Dataset] = []
        self.series: dict[str, Series] = {}
        self.table_ds: dict[str, dict[str, h5py.Dataset]] = {}

    def create(self, f: h5py.File, interfaces: list[tuple[str, str]],
               dso_grids: list[str]) -> None:
        """Create every group, dataset and attribute (SWMR forbids creating them later)."""
        m = self.meta
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["scheme"] = m.scheme
        f.attrs["scenario"] = m.scenario
        f.attrs["seed"] = np.int64(m.seed)
        f.attrs["start"] = m.start.isoformat()
        f.attrs["step_s"] = np.int64(m.step_s)
        f.attrs["n_steps"] = np.int64(m.n_steps)
        f.attrs["complete"] = np.bool_(False)
        f.attrs["software_version"] = m.software_version
        f.attrs["scenario_toml"] = m.scenario_toml
        f.attrs["scheme_label"] = m.scheme_label
        f.attrs["scheme_short"] = m.scheme_short
        f.attrs["scheme_description"] = m.scheme_description
        f.attrs["scheme_counterfactual"] = np.bool_(m.scheme_counterfactual)
        f.attrs["scheme_balances_areas"] = np.bool_(m.scheme_balances_areas)
        f.attrs["scheme_order"] = np.int64(m.scheme_order)
        f.attrs["scheme_operator"] = m.scheme_operator
        f.attrs["builtin"] = m.builtin

        b = self.block_steps
        self.time = self.time_scale(f)
        self.times = []  # the groups' own time coordinates
        self.series = {}

        def series(group: h5py.Group, name: str, scale: h5py.Dataset | None, units: str,
                   desc: str) -> None:
            cols = () if scale is None else (scale.shape[0],)
            ds = self.resizable(group, name, cols, "float64", units, desc)
            if "time" not in group:  # netCDF readers see a group's own dimension scales only
                self.times.append(self.time_scale(group))
            ds.dims[0].attach_scale(group["time"])
            if scale is not None:
                ds.dims[1].attach_scale(scale)
            self.series[ds.name] = Series(ds, b)

        grp = f.create_group("grids")
        for g in self.grids:
            gg = grp.create_group(g.name)
            vmin, vmax, lmax = (float(x) for x in m.limits[g.level])
            gg.attrs["level"] = g.level
            gg.attrs["vm_min_pu"] = vmin
            gg.attrs["vm_max_pu"] = vmax
            gg.attrs["loading_max_percent"] = lmax
            bus = self.names(gg, "bus", g.bus, "bus names (columns of vm_pu)")
            branch = self.names(gg, "branch", g.branch,
                                 "branch names, lines then transformers")
            series(gg, "vm_pu", bus, "pu", "bus voltage magnitude (AC power flow)")
            series(gg, "branch_loading_percent", branch, "percent",
                   "branch loading relative to its rating")

        gi = f.create_group("interfaces")
        iname = self.names(gi, "name", [i[0] for i in interfaces], "TSO-DSO interface names")
        igrid = self.names(gi, "grid", [i[1] for i in interfaces],
                            "D grid behind each interface", scale=False)
        igrid.dims[0].attach_scale(iname)
        series(gi, "p_mw", iname, "MW", "active power exchange, positive from T into D")
        series(gi, "q_mvar", iname, "Mvar", "reactive power exchange, positive from T into D")
        series(gi, "tap_pos", iname, "1", "tap position of the interface transformer after the "
               "DSO's tap control of the step (NaN: no tap control)")

        gn = f.create_group("needs")
        series(gn, "tso_imbalance_mw", None, "MW",
               "system imbalance before activations (realised - forecast net injection;"
               " + = long)")
        series(gn, "unresolved_imbalance_mw", None, "MW",
               "imbalance the market left unserved (same sign convention)")

        gc = f.create_group("costs")
        for key in COST_COLUMNS:
            series(gc, key, None, "EUR", COST_DESCRIPTIONS[key])
        dso = self.names(gc, "dso_grid", list(dso_grids), "DSO grids (columns of dso_by_grid)")
        series(gc, "dso_by_grid", dso, "EUR",
               "what each DSO paid for flexibility in the step (a transfer)")

        gu = f.create_group("unserved")
        for key in UNSERVED_KEYS:
            series(gu, key, None, UNSERVED_UNITS[key], UNSERVED_DESCRIPTIONS[key])

        self.table_ds = {}
        for table, cols in TABLE_COLUMNS.items():
            gt = f.create_group(table)
            gt.attrs["columns"] = [c[0] for c in cols]
            row = self.table_column(gt, "row", "int64", "1", "row index (table dimension)")
            row.make_scale("row")
            dss = {"row": row}
            for col, kind, units, desc in cols:
                dtype = h5py.string_dtype("utf-8", TABLE_STR_BYTES[col]) if kind == "str" else kind
                ds = self.table_column(gt, col, dtype, units, desc)
                if kind == "str":
                    ds.attrs["_Encoding"] = "utf-8"
                ds.dims[0].attach_scale(row)
                dss[col] = ds
            self.table_ds[table] = dss

        f.create_group("kpis")
        f.create_group("timing")

    def time_scale(self, group: h5py.Group) -> h5py.Dataset:
        """A growing ``time`` dimension scale with CF units, so that xarray and other netCDF
        readers decode timestamps (the root's, and one in every group with a time axis)."""
        time = self.resizable(group, "time", (), "int64", cf_time_units(self.meta.start),
                               "start of the step: seconds since the root attribute start")
        time.attrs["calendar"] = "standard"
        time.make_scale("time")
        return time

    def resizable(self, group: h5py.Group, name: str, cols: tuple[int, ...], dtype: str,
                   units: str, desc: str) -> h5py.Dataset:
        """A (0, *cols) dataset growing along axis 0, chunked (block, <=256)."""
        chunks = (self.block_steps, *(max(1, min(c, _MAX_COL_CHUNK)) for c in cols))
        maxshape = (None, *(c if c > 0 else None for c in cols))
        fill = np.nan if dtype == "float64" else 0
        ds = group.create_dataset(name, shape=(0, *cols), maxshape=maxshape, chunks=chunks,
                                  dtype=dtype, fillvalue=fill, **_COMPRESSION)
        ds.attrs["units"] = units
        ds.attrs["description"] = desc
        return ds

    @staticmethod
    def table_column(group: h5py.Group, name: str, dtype: str | np.dtype, units: str,
                      desc: str) -> h5py.Dataset:
        ds = group.create_dataset(name, shape=(0,), maxshape=(None,),
                                  chunks=(_TABLE_CHUNK_ROWS,), dtype=dtype, **_COMPRESSION)
        ds.attrs["units"] = units
        ds.attrs["description"] = desc
        return ds

    @staticmethod
    def names(group: h5py.Group, name: str, values: Sequence[str], desc: str,
               scale: bool = True) -> h5py.Dataset:
        """A fixed 1-D variable-length UTF-8 name dataset, by default a dimension scale."""
        vals = list(values)
        if scale and len(set(vals)) != len(vals):
            raise ValueError(f"duplicate names in {group.name}/{name}")
        ds = group.create_dataset(name, data=np.array(vals, dtype=object).reshape(len(vals)),
                                  dtype=_NAME_DTYPE)
        ds.attrs["units"] = "1"
        ds.attrs["description"] = desc
        if scale:
            ds.make_scale(name)
        return ds

