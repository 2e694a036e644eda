"""Analyst-facing reading API: a run file as pandas/xarray objects, a ``compare`` directory
as a KPI table, and export of both to CSV or XLSX for spreadsheet users.

Files are read with h5py (falling back to SWMR reading for runs that are still going or
were killed, see ``results.read.open_results``). A ``Run`` holds no HDF5 handle between
calls: every property opens the file, reads the steps written at that moment into memory
and closes it again, so nothing leaks and a live run shows its newest steps. xarray is
imported only when a Dataset is asked for.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd
from tsodso.results.kpis import COUNT_KPIS, KPI_DESCRIPTIONS, KPI_UNITS, read_kpis
from tsodso.results.read import (
    TABLES,
    attr_value,
    candidate_files,
    check_format,
    is_results_file,
    meta_of,
    names,
    open_results,
    read_costs,
    read_table,
    root_meta,
    run_order,
    steps_written,
)

if TYPE_CHECKING:
    import xarray as xr

#: Export formats of ``export``.
EXPORT_FORMATS: tuple[str, ...] = ("csv", "xlsx")


class Run:
    """One results file (one scheme) as pandas and xarray objects.

    Build it with ``results.open(path)``. Time-indexed data covers the steps written when
    the property is read (all steps for a complete run). Timestamps are
    ``start + step * step_s`` (naive, in the scenario's local time like ``start``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._closed = False
        with self._open() as f:  # fail early on a missing or foreign file
            check_format(f, self.path)

    # -- plumbing -------------------------------------------------------------------------

    def _open(self) -> h5py.File:
        if self._closed:
            raise ValueError(f"Run of {self.path} is closed")
        return open_results(self.path)

    def close(self) -> None:
        """Mark the run closed (no HDF5 handle is held; later reads raise ValueError)."""
        self._closed = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<results.Run {str(self.path)!r} ({state})>"

    @staticmethod
    def _times(f: h5py.File, steps: np.ndarray) -> pd.DatetimeIndex:
        """Timestamps of step indices: start + step * step_s."""
        start = pd.Timestamp(datetime.fromisoformat(attr_value(f.attrs["start"])))
        seconds = np.asarray(steps, dtype=np.int64) * int(f.attrs["step_s"])
        return pd.DatetimeIndex(start + pd.to_timedelta(seconds, unit="s"), name="time")

    @classmethod
    def _time_index(cls, f: h5py.File) -> pd.DatetimeIndex:
        return cls._times(f, np.arange(steps_written(f)))

    # -- metadata -------------------------------------------------------------------------

    @property
    def meta(self) -> dict:
        """Root attributes (format, scheme, scenario, seed, start as datetime, step_s,
        n_steps, complete as bool, software_version, scenario_toml, and the scheme
        description: scheme_label, scheme_short, scheme_description, scheme_counterfactual,
        scheme_balances_areas, scheme_order, builtin; defaults for files without them)."""
        with self._open() as f:
            return root_meta(f)

    @property
    def steps(self) -> int:
        """Number of steps written (``n_steps`` for a complete run)."""
        with self._open() as f:
            return steps_written(f)

    @property
    def time(self) -> pd.DatetimeIndex:
        """Start time of every step written (index named ``time``)."""
        with self._open() as f:
            return self._time_index(f)

    @property
    def grids(self) -> list[str]:
        """Names of the grids in the file (T grid(s) and DSO grids), in file order."""
        with self._open() as f:
            return list(f["grids"])

    @property
    def timing(self) -> dict[str, float]:
        """Wall-clock seconds of the run, when it reported them (``/timing``), else empty."""
        with self._open() as f:
            return {k: attr_value(v) for k, v in f["timing"].attrs.items()}

    # -- tables ---------------------------------------------------------------------------

    def _table(self, name: str) -> pd.DataFrame:
        with self._open() as f:
            data = read_table(f, name)
            columns = list(data)
            # strings as Python str objects, as pandas keeps them
            data = {c: v.astype(object) if v.dtype.kind == "U" else v for c, v in data.items()}
            df = pd.DataFrame(data, columns=columns)
            df.insert(columns.index("step") + 1, "time", self._times(f, data["step"]))
        return df

    @property
    def activations(self) -> pd.DataFrame:
        """One row per activated product: step, time, resource, kind, grid, level, buyer,
        direction (+1 up / -1 down), mw (magnitude), price (EUR/MWh), cost (EUR)."""
        return self._table("activations")

    @property
    def conflicts(self) -> pd.DataFrame:
        """One row per TSO-DSO conflict: step, time, kind, grid, mw."""
        return self._table("conflicts")

    # -- time series ----------------------------------------------------------------------

    @property
    def costs(self) -> pd.DataFrame:
        """EUR incurred in each step, indexed by time: tso, dso, brp, imbalance, violation,
        total, then one ``dso:<grid>`` column per DSO grid."""
        with self._open() as f:
            costs = read_costs(f, steps_written(f))
            data = dict(costs.parts)
            for j, grid in enumerate(costs.dso_grid):
                data[f"dso:{grid}"] = costs.dso_by_grid[:, j]
            return pd.DataFrame(data, index=self._time_index(f))

    @property
    def needs(self) -> pd.DataFrame:
        """MW per step, indexed by time: tso_imbalance_mw (before activations, + = long) and
        unresolved_imbalance_mw (what the market left unserved)."""
        with self._open() as f:
            n = steps_written(f)
            g = f["needs"]
            data = {key: g[key][:n] for key in ("tso_imbalance_mw", "unresolved_imbalance_mw")}
            return pd.DataFrame(data, index=self._time_index(f))

    @property
    def kpis(self) -> pd.Series:
        """KPIs (float Series named after the scheme, in ``KPI_UNITS`` order; units in
        ``.attrs["units"]``). Computed from the data when the file has none (killed run)."""
        with self._open() as f:
            values = read_kpis(f)
            scheme = attr_value(f.attrs["scheme"])
        series = pd.Series(values, name=scheme, dtype=float)
        series.index.name = "kpi"
        series.attrs["units"] = dict(KPI_UNITS)
        return series

    # -- xarray ---------------------------------------------------------------------------

    @staticmethod
    def _var(ds: h5py.Dataset, n: int, dims: tuple[str, ...]) -> tuple:
        attrs = {k: attr_value(ds.attrs[k]) for k in ("units", "description") if k in ds.attrs}
        return dims, ds[:n], attrs

    @property
    def interfaces(self) -> xr.Dataset:
        """TSO-DSO exchange: ``p_mw`` and ``q_mvar`` (time, interface), positive from T into
        D, and ``tap_pos`` (files of format 3 on: the transformers' tap positions), with
        coordinates time (datetime64), interface (names) and grid (D grid)."""
        import xarray as xr

        with self._open() as f:
            n = steps_written(f)
            g = f["interfaces"]
            return xr.Dataset(
                {key: self._var(g[key], n, ("time", "interface"))
                 for key in ("p_mw", "q_mvar", "tap_pos") if key in g},
                coords={"time": self._time_index(f).values,
                        "interface": names(g["name"]),
                        "grid": ("interface", names(g["grid"]))},
                attrs={"scheme": attr_value(f.attrs["scheme"])},
            )

    def grid(self, name: str) -> xr.Dataset:
        """One grid's state: ``vm_pu`` (time, bus) and ``branch_loading_percent``
        (time, branch), coordinates time (datetime64), bus and branch names; attrs grid,
        level, vm_min_pu, vm_max_pu, loading_max_percent."""
        import xarray as xr

        with self._open() as f:
            if name not in f["grids"]:
                raise KeyError(f"no grid {name!r} in {self.path}; grids: {list(f['grids'])}")
            n = steps_written(f)
            g = f["grids"][name]
            attrs = {"grid": name, **{k: attr_value(v) for k, v in g.attrs.items()}}
            return xr.Dataset(
                {"vm_pu": self._var(g["vm_pu"], n, ("time", "bus")),
                 "branch_loading_percent": self._var(g["branch_loading_percent"], n,
                                                     ("time", "branch"))},
                coords={"time": self._time_index(f).values,
                        "bus": names(g["bus"]),
                        "branch": names(g["branch"])},
                attrs=attrs,
            )


def open_run(path: str | Path) -> Run:
    """Open a results file (complete, live or interrupted) as a ``Run``."""
    return Run(path)


# -- comparison directories ---------------------------------------------------------------


def _runs(path: str | Path) -> list[tuple[str, Path, dict, dict[str, float]]]:
    """(scheme, file, meta, kpis) of a run file, or of every run file in a directory.

    Directory order: the order of summary.csv if present, then the schemes' own order
    (``scheme_order``), then file name. Files that are not tsodso results are skipped with a
    warning; two files of the same scheme are an error.
    """
    src = Path(path)
    files = candidate_files(src)
    if src.is_dir():
        for p in [p for p in files if not is_results_file(p)]:
            warnings.warn(f"skipping {p}: not a tsodso results file", stacklevel=3)
            files.remove(p)
        if not files:
            raise ValueError(f"no tsodso results files (*.h5) in {src}")

    found: list[tuple[str, Path, dict, dict[str, float]]] = []
    seen: dict[str, Path] = {}
    for p in files:
        with open_results(p) as f:
            check_format(f, p)
            meta = meta_of(f)
            kpis = read_kpis(f)
        scheme = meta["scheme"]
        if scheme in seen:
            raise ValueError(f"two results files of scheme {scheme!r}: {seen[scheme]} and {p}")
        seen[scheme] = p
        found.append((scheme, p, meta, kpis))
    return [found[i] for i in run_order(src, [m for _, _, m, _ in found])]


def _kpi_table(runs: list[tuple[str, Path, dict, dict[str, float]]]) -> pd.DataFrame:
    rows = {scheme: kpis for scheme, _, _, kpis in runs}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(KPI_UNITS))
    for col in COUNT_KPIS:
        table[col] = table[col].astype(np.int64)
    table.index.name = "scheme"
    table.attrs["units"] = dict(KPI_UNITS)
    table.attrs["files"] = {scheme: str(p) for scheme, p, _, _ in runs}
    table.attrs["complete"] = {scheme: meta["complete"] for scheme, _, meta, _ in runs}
    return table


def compare(path: str | Path) -> pd.DataFrame:
    """KPI table of a ``tsodso compare`` directory (or of one run file).

    One row per scheme (index ``scheme``), one column per KPI (``KPI_UNITS`` order; counts
    int64, the rest float64), read from the .h5 files (KPIs of interrupted runs are
    computed from their data). Rows follow DIR/summary.csv when present. ``.attrs`` holds
    ``units`` (KPI -> units), ``files`` and ``complete`` (scheme -> path / bool).
    """
    return _kpi_table(_runs(path))


# -- export -------------------------------------------------------------------------------


def _safe(name: str) -> str:
    """A scheme name usable in file and sheet names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "run"


#: Leading characters that make a spreadsheet read a text cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Text that a spreadsheet would run as a formula, prefixed with ``'`` (shown as text);
    every other value unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _neutral(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell, index label and column name neutralised."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(neutralise)
    if out.index.dtype == object:
        out.index = out.index.map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def _table_units(path: Path, table: str) -> dict[str, tuple[str, str]]:
    """Column -> (units, description) of an event table, from the file's attributes."""
    with open_results(path) as f:
        if table not in f:
            return {}
        return {c: (str(attr_value(ds.attrs.get("units", ""))),
                    str(attr_value(ds.attrs.get("description", ""))))
                for c, ds in f[table].items() if c != "row"}


def _units_table(sheets: dict[str, pd.DataFrame], path_of: dict[str, Path]) -> pd.DataFrame:
    """Units and a description of every column of every sheet (the sheet ``units``)."""
    rows = [("kpis", "scheme", "", "coordination scheme of the run")]
    rows += [("kpis", k, u, KPI_DESCRIPTIONS[k]) for k, u in KPI_UNITS.items()]
    for sheet, df in sheets.items():
        kind = sheet.split("_", 1)[0]
        if kind == "costs":
            rows.append((sheet, "time", "", "start of the step (scenario local time)"))
            for c in df.columns:
                what = f"cost of DSO {c[4:]}" if c.startswith("dso:") else f"{c} cost"
                rows.append((sheet, c, "EUR", f"{what} incurred in the step (+ paid, - earned)"))
        elif kind in TABLES:
            units = _table_units(path_of[sheet], kind)
            for c in [df.index.name, *df.columns]:
                if c == "time":
                    rows.append((sheet, c, "", "start of the step (scenario local time)"))
                else:
                    rows.append((sheet, c, *units.get(c, ("", ""))))
    rows += [("runs", c, "s" if c == "step_s" else "", d) for c, d in RUNS_COLUMNS.items()]
    return _neutral(pd.DataFrame(rows, columns=["sheet", "column", "units", "description"]))


#: Columns of the ``runs`` sheet and what they hold.
RUNS_COLUMNS: dict[str, str] = {
    "scheme": "coordination scheme", "file": "results file", "scenario": "scenario name",
    "seed": "random seed of the forecast errors", "start": "start of the first step",
    "step_s": "length of a step", "n_steps": "steps the run was set up for",
    "steps_written": "steps in the file", "complete": "the run finished",
    "software_version": "tsodso version that wrote the file",
}

#: Excel number formats by units (columns without units keep the default).
NUMBER_FORMATS: dict[str, str] = {
    "EUR": "#,##0.00", "EUR/MWh": "#,##0.00", "MW": "0.000", "MWh": "#,##0.000",
    "Mvar": "0.000", "pu": "0.0000", "percent": "0.0",
}
DATE_FORMAT = "yyyy-mm-dd hh:mm"


def export(path: str | Path, fmt: str = "csv", out_dir: str | Path | None = None) -> list[Path]:
    """Write the KPI table, the per-step costs and the event tables (activations, conflicts,
    events) of a compare directory or one run file.

    Costs are one wide table per scheme (rows = steps, columns = ``Run.costs``), the layout
    a spreadsheet user charts directly; the event tables have one row per event with its
    step and time. ``fmt="csv"``: ``kpis.csv``, ``costs_<scheme>.csv`` and
    ``<table>_<scheme>.csv``; ``fmt="xlsx"``: one workbook ``results.xlsx`` with sheets
    ``kpis``, ``costs_<scheme>`` and ``<table>_<scheme>`` per scheme, ``runs`` (scenario,
    seed, start, steps, complete, version of each file) and ``units`` (units and a
    description of every column of every sheet), numbers formatted by their units. For a
    single file the names get the prefix ``<stem>_`` (workbook ``<stem>.xlsx``). Text that
    a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``) is
    written with a leading ``'``. ``out_dir`` defaults to the directory (or the file's
    folder). Returns the paths written, KPI table first.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {EXPORT_FORMATS}")
    src = Path(path)
    runs = _runs(src)
    table = _kpi_table(runs)
    out = Path(out_dir) if out_dir is not None else (src if src.is_dir() else src.parent)
    out.mkdir(parents=True, exist_ok=True)
    prefix = "" if src.is_dir() else f"{src.stem}_"
    frames: dict[tuple[str, str], pd.DataFrame] = {}  # (kind, scheme) -> table
    files: dict[str, Path] = {}
    for scheme, p, _, _ in runs:
        run = Run(p)
        files[scheme] = p
        frames[("costs", scheme)] = run.costs
        for t in TABLES:
            frames[(t, scheme)] = run._table(t).set_index("step")

    if fmt == "csv":
        written = [out / f"{prefix}kpis.csv"]
        _neutral(table).to_csv(written[0])
        for kind in ("costs", *TABLES):
            for scheme, _, _, _ in runs:
                target = out / f"{prefix}{kind}_{_safe(scheme)}.csv"
                _neutral(frames[(kind, scheme)]).to_csv(target)
                written.append(target)
        return written

    target = out / (f"{src.stem}.xlsx" if prefix else "results.xlsx")
    runs_sheet = pd.DataFrame(
        [{"scheme": scheme, "file": p.name, "scenario": meta["scenario"], "seed": meta["seed"],
          "start": meta["start"], "step_s": meta["step_s"], "n_steps": meta["n_steps"],
          "steps_written": meta["steps_written"], "complete": meta["complete"],
          "software_version": meta["software_version"]}
         for scheme, p, meta, _ in runs], columns=list(RUNS_COLUMNS))
    used: set[str] = {"kpis", "runs", "units"}
    sheets: dict[str, pd.DataFrame] = {}
    path_of: dict[str, Path] = {}
    for kind in ("costs", *TABLES):
        for scheme, p, _, _ in runs:
            sheet = f"{kind}_{_safe(scheme)}"[:31]  # Excel's sheet name limit
            base, k = sheet, 1
            while sheet in used:
                k += 1
                sheet = f"{base[:28]}_{k}"
            used.add(sheet)
            sheets[sheet] = frames[(kind, scheme)]
            path_of[sheet] = p
    units = _units_table(sheets, path_of)
    fmt_of = {(r.sheet, r.column): NUMBER_FORMATS.get(r.units, "")
              for r in units.itertuples()}
    fmt_of.update({("kpis", k): NUMBER_FORMATS.get(u, "") for k, u in KPI_UNITS.items()})
    with pd.ExcelWriter(target, engine="openpyxl") as xw:
        _sheet(xw, _neutral(table), "kpis", True, fmt_of)
        for sheet, df in sheets.items():
            _sheet(xw, _neutral(df), sheet, True, fmt_of)
        _sheet(xw, _neutral(runs_sheet), "runs", False, fmt_of)
        _sheet(xw, units, "units", False, fmt_of)
    return [target]


def _sheet(xw: pd.ExcelWriter, df: pd.DataFrame, name: str, index: bool,
           formats: dict[tuple[str, str], str]) -> None:
    """Write one sheet with a frozen header row, number formats by the columns' units, dates
    as dates, and columns wide enough for their content (Excel shows ``####`` for a date
    that does not fit). Text cells are written as text, never as formulas."""
    df.to_excel(xw, sheet_name=name, index=index, freeze_panes=(1, 1 if index else 0))
    ws = xw.sheets[name]
    labels = [df.index.name or "", *df.columns] if index else list(df.columns)
    for j, column in enumerate(ws.iter_cols(min_row=1, max_row=ws.max_row), start=1):
        label = str(labels[j - 1]) if j <= len(labels) else ""
        number_format = formats.get((name, label), "")
        widths = [len(label)]
        for i, cell in enumerate(column[1:]):
            value = cell.value
            if cell.data_type == "f":  # openpyxl reads a leading "=" as a formula
                cell.data_type = "s"
            if isinstance(value, datetime):
                cell.number_format = DATE_FORMAT
            elif number_format and isinstance(value, int | float) and not isinstance(value,
                                                                                      bool):
                cell.number_format = number_format
            if i < 200:
                widths.append(17 if isinstance(value, datetime) else min(len(str(value)), 40))
        ws.column_dimensions[column[0].column_letter].width = max(widths, default=8) + 2
