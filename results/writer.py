"""Block-wise HDF5 writer for one simulation run (format "tsodso-results", see results/format.py).

The file is written while the run goes: every group, dataset and attribute is created up
front, then the file switches to HDF5 SWMR (single writer, multiple readers) mode and each
block of steps is appended to resizable, chunked, compressed datasets and flushed. A run
that is interrupted (exception, Ctrl-C, SIGTERM, SIGKILL) therefore leaves a readable file
holding every flushed step, with the root attribute ``complete`` still False. The layout is
documented in ``docs/results-format.md``.

One writer per file: the writer takes an exclusive lock on the file (``WriterLock``) before
it writes anything and holds it until the file is finished. ``resume=True`` reopens the file
of an interrupted run: it checks the layout, trims it to the committed steps and, while the
run is replayed from its start, checks every step it already holds against the replay
instead of writing it again.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
from tsodso.core.records import Activation, Conflict, Event, StepRecord
from tsodso.core.vocabulary import COST_COLUMNS, COST_KEYS, SOCIAL_KEYS, UNSERVED_KEYS
from tsodso.results.format import (
    COST_DESCRIPTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    TABLE_COLUMNS,
    TABLE_STR_BYTES,
    UNSERVED_DESCRIPTIONS,
    UNSERVED_UNITS,
)
from tsodso.results.integrity import ResultsFileError, WriterLock, clear_write_flags
from tsodso.results.kpis import compute_kpis, write_kpis
from tsodso.results.read import attr_value, names, steps_written

__all__ = ["Activation", "Conflict", "Event", "StepRecord", "ResultsWriter", "RunMeta",
           "GridLayout", "ResultsFileError", "ResumeMismatch"]


class ResumeMismatch(ResultsFileError):
    """The replay of a resumed run differs from a step the file already holds."""



_TABLE_CHUNK_ROWS = 4096
_MAX_COL_CHUNK = 256
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
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


class _Series:
    """One time-axis dataset and its in-memory block buffer."""

    def __init__(self, ds: h5py.Dataset, block: int) -> None:
        self.ds = ds
        self.buf = np.empty((block, *ds.shape[1:]), dtype=ds.dtype)


def cf_time_units(start: datetime) -> str:
    """CF units of /time: ``seconds since <start>`` (ISO, local time of the scenario)."""
    return f"seconds since {start.isoformat(sep=' ')}"


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid {what} name {name!r} (non-empty, no '/')")


class ResultsWriter:
    """Write one run's results to an HDF5 file, block by block, crash-safe (SWMR).

    ``append`` buffers a step and writes a block every ``block_steps`` steps; ``flush``
    writes the buffered steps now; ``close`` finishes the file (KPIs, ``complete``,
    timing). Used as a context manager, an exception inside the ``with`` block closes the
    file with ``complete=False``; a normal exit closes it with ``complete=True`` unless
    ``close`` was already called.
    """

    def __init__(
        self,
        path: str | Path,
        meta: RunMeta,
        grids: list[GridLayout],
        interfaces: list[tuple[str, str]],
        dso_grids: list[str],
        block_steps: int = 96,
        resume: bool = False,
    ) -> None:
        if block_steps < 1:
            raise ValueError("block_steps must be >= 1")
        if meta.step_s <= 0:
            raise ValueError("meta.step_s must be > 0")
        names = [g.name for g in grids]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate grid names: {names}")
        for g in grids:
            _check_name(g.name, "grid")
            if g.level not in meta.limits:
                raise ValueError(f"no limits for level {g.level!r} of grid {g.name!r}")
        self.path = Path(path)
        self.meta = meta
        self.block_steps = block_steps
        self._grids = list(grids)
        self._n_if = len(interfaces)
        self._n_dso = len(dso_grids)
        self._n = 0  # steps committed to the file
        self._buffered = 0  # steps in the buffers
        self._rows = dict.fromkeys(TABLE_COLUMNS, 0)  # table rows committed to the file
        self._table_buf: dict[str, list[tuple]] = {t: [] for t in TABLE_COLUMNS}
        self._closed = False
        self._kpis: dict[str, float] = {}
        self._valid_str: dict[str, set[str]] = {}
        self._resume_n = 0  # steps the file held when resumed: replayed and checked
        self._checked = 0  # of those, checked so far
        self._stored: dict[str, dict[str, np.ndarray]] = {}  # tables held when resumed

        self._lock = WriterLock(self.path)  # before anything is written
        f: h5py.File | None = None
        try:
            if resume:
                f = self._reopen(interfaces, dso_grids)
            else:
                f = h5py.File(self.path, "w", libver="latest", locking=False)
                self._create_layout(f, interfaces, dso_grids)
            f.flush()
            f.swmr_mode = True
        except BaseException:
            if f is not None:
                f.close()
            self._lock.release()
            raise
        self._f = f

    def _reopen(self, interfaces: list[tuple[str, str]], dso_grids: list[str]) -> h5py.File:
        """Open the file of an interrupted run for appending (see ``resume``)."""
        try:
            clear_write_flags(self.path)
            f = h5py.File(self.path, "r+", libver="latest", locking=False)
        except OSError as exc:
            raise ResultsFileError(f"{self.path}: cannot reopen to resume: {exc}") from None
        try:
            m = self.meta
            a = {k: attr_value(v) for k, v in f.attrs.items()}
            want = {"format": FORMAT_NAME, "scheme": m.scheme, "seed": m.seed,
                    "step_s": m.step_s, "n_steps": m.n_steps, "start": m.start.isoformat()}
            for key, value in want.items():
                if a.get(key) != value:
                    raise ResultsFileError(f"{self.path}: cannot resume: {key} is "
                                           f"{a.get(key)!r} in the file, {value!r} in the run")
            layout = ([g.name for g in self._grids], list(dso_grids),
                      [i[0] for i in interfaces])
            stored = (list(f["grids"]), names(f["costs/dso_grid"]), names(f["interfaces/name"]))
            if layout != stored:
                raise ResultsFileError(f"{self.path}: cannot resume: the grids differ from the "
                                       "file's")
            n = steps_written(f)
            self._time = f["time"]
            self._times = [f[f"grids/{g.name}/time"] for g in self._grids] + [
                f[f"{group}/time"] for group in ("interfaces", "needs", "costs", "unserved")]
            self._series = {}
            for g in self._grids:
                for ds in ("vm_pu", "branch_loading_percent"):
                    self._series[f"/grids/{g.name}/{ds}"] = _Series(f[f"grids/{g.name}/{ds}"],
                                                                   self.block_steps)
            for path in ("/interfaces/p_mw", "/interfaces/q_mvar", "/interfaces/tap_pos",
                         "/needs/tso_imbalance_mw",
                         "/needs/unresolved_imbalance_mw", "/costs/dso_by_grid",
                         *(f"/costs/{k}" for k in COST_COLUMNS),
                         *(f"/unserved/{k}" for k in UNSERVED_KEYS)):
                self._series[path] = _Series(f[path], self.block_steps)
            self._table_ds = {}
            for table, cols in TABLE_COLUMNS.items():
                if table not in f:
                    raise ResultsFileError(f"{self.path}: cannot resume: no /{table} (file "
                                           "written by an older version)")
                dss = {c: f[f"{table}/{c}"] for c in ("row", *(c[0] for c in cols))}
                rows = min(ds.shape[0] for ds in dss.values())
                keep = int(np.count_nonzero(dss["step"][:rows] < n))  # rows come in step order
                self._table_ds[table] = dss
                self._rows[table] = keep
                self._stored[table] = {c: dss[c][:keep] for c in dss if c != "row"}
            self._n = self._resume_n = n
            self._trim(f)
            f.attrs["complete"] = np.bool_(False)
            for key in list(f["kpis"].attrs):
                del f["kpis"].attrs[key]
            for key in list(f["timing"].attrs):
                del f["timing"].attrs[key]
        except KeyError as exc:
            f.close()
            raise ResultsFileError(f"{self.path}: cannot resume: the file's layout differs "
                                   f"({exc})") from None
        except BaseException:
            f.close()
            raise
        return f

    # -- layout -------------------------------------------------------------------------

    def _create_layout(
        self, f: h5py.File, interfaces: list[tuple[str, str]], dso_grids: list[str]
    ) -> None:
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
        self._time = self._time_scale(f)
        self._times: list[h5py.Dataset] = []  # the groups' own time coordinates
        self._series: dict[str, _Series] = {}

        def series(group: h5py.Group, name: str, scale: h5py.Dataset | None, units: str,
                   desc: str) -> None:
            cols = () if scale is None else (scale.shape[0],)
            ds = self._resizable(group, name, cols, "float64", units, desc)
            if "time" not in group:  # netCDF readers see a group's own dimension scales only
                self._times.append(self._time_scale(group))
            ds.dims[0].attach_scale(group["time"])
            if scale is not None:
                ds.dims[1].attach_scale(scale)
            self._series[ds.name] = _Series(ds, b)

        grp = f.create_group("grids")
        for g in self._grids:
            gg = grp.create_group(g.name)
            vmin, vmax, lmax = (float(x) for x in m.limits[g.level])
            gg.attrs["level"] = g.level
            gg.attrs["vm_min_pu"] = vmin
            gg.attrs["vm_max_pu"] = vmax
            gg.attrs["loading_max_percent"] = lmax
            bus = self._names(gg, "bus", g.bus, "bus names (columns of vm_pu)")
            branch = self._names(gg, "branch", g.branch,
                                 "branch names, lines then transformers")
            series(gg, "vm_pu", bus, "pu", "bus voltage magnitude (AC power flow)")
            series(gg, "branch_loading_percent", branch, "percent",
                   "branch loading relative to its rating")

        gi = f.create_group("interfaces")
        iname = self._names(gi, "name", [i[0] for i in interfaces], "TSO-DSO interface names")
        igrid = self._names(gi, "grid", [i[1] for i in interfaces],
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
        dso = self._names(gc, "dso_grid", list(dso_grids), "DSO grids (columns of dso_by_grid)")
        series(gc, "dso_by_grid", dso, "EUR",
               "what each DSO paid for flexibility in the step (a transfer)")

        gu = f.create_group("unserved")
        for key in UNSERVED_KEYS:
            series(gu, key, None, UNSERVED_UNITS[key], UNSERVED_DESCRIPTIONS[key])

        self._table_ds: dict[str, dict[str, h5py.Dataset]] = {}
        for table, cols in TABLE_COLUMNS.items():
            gt = f.create_group(table)
            gt.attrs["columns"] = [c[0] for c in cols]
            row = self._table_column(gt, "row", "int64", "1", "row index (table dimension)")
            row.make_scale("row")
            dss = {"row": row}
            for col, kind, units, desc in cols:
                dtype = h5py.string_dtype("utf-8", TABLE_STR_BYTES[col]) if kind == "str" else kind
                ds = self._table_column(gt, col, dtype, units, desc)
                if kind == "str":
                    ds.attrs["_Encoding"] = "utf-8"
                ds.dims[0].attach_scale(row)
                dss[col] = ds
            self._table_ds[table] = dss

        f.create_group("kpis")
        f.create_group("timing")

    def _time_scale(self, group: h5py.Group) -> h5py.Dataset:
        """A growing ``time`` dimension scale with CF units, so that xarray and other netCDF
        readers decode timestamps (the root's, and one in every group with a time axis)."""
        time = self._resizable(group, "time", (), "int64", cf_time_units(self.meta.start),
                               "start of the step: seconds since the root attribute start")
        time.attrs["calendar"] = "standard"
        time.make_scale("time")
        return time

    def _resizable(self, group: h5py.Group, name: str, cols: tuple[int, ...], dtype: str,
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
    def _table_column(group: h5py.Group, name: str, dtype: str | np.dtype, units: str,
                      desc: str) -> h5py.Dataset:
        ds = group.create_dataset(name, shape=(0,), maxshape=(None,),
                                  chunks=(_TABLE_CHUNK_ROWS,), dtype=dtype, **_COMPRESSION)
        ds.attrs["units"] = units
        ds.attrs["description"] = desc
        return ds

    @staticmethod
    def _names(group: h5py.Group, name: str, values: Sequence[str], desc: str,
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

    # -- writing --------------------------------------------------------------------------

    @property
    def steps_written(self) -> int:
        """Steps committed to the file (excluding the buffered ones)."""
        return self._n

    @property
    def steps_appended(self) -> int:
        """Steps appended so far (written + buffered; when resumed, checked steps count)."""
        if self._checked < self._resume_n:
            return self._checked
        return self._n + self._buffered

    @property
    def resumed_at(self) -> int:
        """Steps the file held when it was resumed (0 for a new file)."""
        return self._resume_n

    def append(self, rec: StepRecord) -> None:
        """Buffer one step; writes and flushes a block every ``block_steps`` steps.

        Steps must be appended in order, 0, 1, 2, ...: ``rec.step`` is the row of /time.
        The record is validated completely before anything is buffered.
        """
        if self._closed:
            raise RuntimeError("ResultsWriter is closed")
        expected = self.steps_appended
        if rec.step != expected:
            raise ValueError(f"expected step {expected}, got {rec.step}")
        values, rows = self._validate(rec)
        if rec.step < self._resume_n:
            self._check_stored(rec.step, values, rows)
            self._checked += 1
            return
        i = self._buffered
        for name, value in values.items():
            self._series[name].buf[i] = value
        for table, new in rows.items():
            self._table_buf[table].extend(new)
        self._buffered += 1
        if self._buffered >= self.block_steps:
            self.flush()

    def _check_stored(self, k: int, values: dict[str, np.ndarray | float],
                      rows: dict[str, list[tuple]]) -> None:
        """Compare a replayed step with what the resumed file holds (bit for bit)."""
        for name, value in values.items():
            stored = self._series[name].ds[k]
            if np.asarray(stored).tobytes() != np.asarray(value, dtype=stored.dtype).tobytes():
                raise ResumeMismatch(f"{self.path}: cannot resume: step {k} of {name} differs "
                                     "from the replay (other software version or scenario?)")
        for table, new in rows.items():
            stored = self._stored[table]
            at = np.flatnonzero(stored["step"] == k)
            cols = TABLE_COLUMNS[table]
            held = [tuple(stored[c][i].decode("utf-8") if kind == "str" else stored[c][i].item()
                          for c, kind, _, _ in cols) for i in at]
            if held != [tuple(r) for r in new]:
                raise ResumeMismatch(f"{self.path}: cannot resume: the {table} of step {k} "
                                     "differ from the replay")

    def _validate(
        self, rec: StepRecord
    ) -> tuple[dict[str, np.ndarray | float], dict[str, list[tuple]]]:
        """Check and convert a record: (dataset path -> row, table -> rows).

        Everything that can fail happens here, so a rejected record leaves no trace.
        """
        out: dict[str, np.ndarray | float] = {}
        grid_names = {g.name for g in self._grids}
        for label, d in (("vm_pu", rec.vm_pu), ("loading_percent", rec.loading_percent)):
            if set(d) != grid_names:
                raise ValueError(f"{label} grids {sorted(d)} != {sorted(grid_names)}")

        def arr(x: object, n: int, what: str) -> np.ndarray:
            a = np.asarray(x, dtype=np.float64)
            if a.shape != (n,):
                raise ValueError(f"{what}: shape {a.shape}, expected ({n},)")
            return a

        for g in self._grids:
            out[f"/grids/{g.name}/vm_pu"] = arr(rec.vm_pu[g.name], len(g.bus),
                                                f"vm_pu[{g.name}]")
            out[f"/grids/{g.name}/branch_loading_percent"] = arr(
                rec.loading_percent[g.name], len(g.branch), f"loading_percent[{g.name}]")
        out["/interfaces/p_mw"] = arr(rec.interface_p_mw, self._n_if, "interface_p_mw")
        out["/interfaces/q_mvar"] = arr(rec.interface_q_mvar, self._n_if, "interface_q_mvar")
        out["/interfaces/tap_pos"] = arr(
            np.full(self._n_if, np.nan) if rec.interface_tap_pos is None
            else rec.interface_tap_pos, self._n_if, "interface_tap_pos")
        out["/needs/tso_imbalance_mw"] = float(rec.tso_imbalance_mw)
        out["/needs/unresolved_imbalance_mw"] = float(rec.unresolved_imbalance_mw)
        if set(rec.costs) != set(COST_KEYS):
            raise ValueError(f"costs keys {sorted(rec.costs)} != {sorted(COST_KEYS)}")
        social = 0.0
        for key in COST_KEYS:
            value = float(rec.costs[key])
            out[f"/costs/{key}"] = value
            if key in SOCIAL_KEYS:
                social += value
        out["/costs/social"] = social
        for key in UNSERVED_KEYS:
            out[f"/unserved/{key}"] = float(rec.unserved.get(key, 0.0))
        out["/costs/dso_by_grid"] = arr(rec.dso_cost_by_grid, self._n_dso, "dso_cost_by_grid")

        act_rows = []
        for a in rec.activations:
            if a.direction not in (-1, 1):
                raise ValueError(f"activation direction must be +1 or -1: {a}")
            for col in ("resource", "kind", "grid", "level", "buyer"):
                self._check_str(col, getattr(a, col))
            act_rows.append((rec.step, a.resource, a.kind, a.grid, a.level, a.buyer,
                             int(a.direction), float(a.mw), float(a.price), float(a.cost),
                             float(a.bid_price)))
        con_rows = []
        for c in rec.conflicts:
            self._check_str("kind", c.kind)
            self._check_str("grid", c.grid)
            con_rows.append((rec.step, c.kind, c.grid, float(c.mw)))
        ev_rows = []
        for e in rec.events:
            self._check_str("kind", e.kind)
            self._check_str("grid", e.grid)
            ev_rows.append((rec.step, e.kind, e.grid, self._fit("detail", e.detail)))
        return out, {"activations": act_rows, "conflicts": con_rows, "events": ev_rows}

    @staticmethod
    def _fit(col: str, value: str) -> str:
        """Free text cut to its column's width (whole UTF-8 characters, no NUL)."""
        raw = str(value).replace("\x00", "").encode("utf-8")[:TABLE_STR_BYTES[col]]
        return raw.decode("utf-8", errors="ignore")

    def _check_str(self, col: str, value: str) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{col} must be a str, got {value!r}")
        known = self._valid_str.setdefault(col, set())
        if value in known:  # names repeat every step: check each one once
            return
        raw = value.encode("utf-8")
        if len(raw) > TABLE_STR_BYTES[col] or b"\x00" in raw:
            raise ValueError(
                f"{col} {value!r}: {len(raw)} UTF-8 bytes, the format allows"
                f" {TABLE_STR_BYTES[col]} (and no NUL characters)"
            )
        known.add(value)

    def flush(self) -> None:
        """Write the buffered steps and table rows now and flush the file.

        Idempotent if interrupted: nothing is marked as written until the whole block is,
        so calling it again rewrites the same rows. /time is extended last, so a reader
        that finds n rows in /time finds at least n rows everywhere else.
        """
        if self._closed:
            raise RuntimeError("ResultsWriter is closed")
        self._write_block()

    def _write_block(self) -> None:
        """Write the buffers to the open SWMR file, flush it, then mark them written."""
        m = self._buffered
        n0, n1 = self._n, self._n + m
        if m:
            for s in self._series.values():
                s.ds.resize(n1, axis=0)
                s.ds[n0:n1] = s.buf[:m]
        new_rows: dict[str, int] = {}
        for table, rows in self._table_buf.items():
            k = len(rows)
            new_rows[table] = k
            if not k:
                continue
            r0, r1 = self._rows[table], self._rows[table] + k
            dss = self._table_ds[table]
            dss["row"].resize(r1, axis=0)
            dss["row"][r0:r1] = np.arange(r0, r1, dtype=np.int64)
            for j, (col, kind, _, _) in enumerate(TABLE_COLUMNS[table]):
                values = [r[j] for r in rows]
                if kind == "str":
                    # the dataset's dtype carries h5py's UTF-8 marker (plain "S" is ASCII)
                    data = np.array([v.encode("utf-8") for v in values], dtype=dss[col].dtype)
                else:
                    data = np.asarray(values, dtype=kind)
                dss[col].resize(r1, axis=0)
                dss[col][r0:r1] = data
        if m:
            seconds = np.arange(n0, n1, dtype=np.int64) * self.meta.step_s
            for time in (*self._times, self._time):  # the root's last
                time.resize(n1, axis=0)
                time[n0:n1] = seconds
        self._f.flush()
        # commit
        self._n = n1
        self._buffered = 0
        for table, k in new_rows.items():
            self._rows[table] += k
            self._table_buf[table].clear()

    # -- closing --------------------------------------------------------------------------

    def close(self, complete: bool, timing: dict[str, float] | None = None) -> dict[str, float]:
        """Flush, compute KPIs from the file, write /kpis, ``complete`` and /timing.

        The SWMR handle is closed and the file reopened in normal mode to write the
        attributes. If the final flush fails, the file is still finished (trimmed to the
        steps written before, ``complete`` False) and the error is raised afterwards.
        Calling it again returns the KPIs of the first call.
        """
        if self._closed:
            return dict(self._kpis)
        self._closed = True
        error: BaseException | None = None
        try:
            self._write_block()
        except BaseException as exc:  # re-raised below, after finishing the file
            error = exc
        finally:
            self._f.close()

        try:
            with h5py.File(self.path, "r+", locking=False) as f:
                self._trim(f)
                kpis = compute_kpis(f)
                write_kpis(f, kpis)
                f.attrs["complete"] = np.bool_(bool(complete) and error is None)
                if timing:
                    for key, value in timing.items():
                        f["timing"].attrs[key] = float(value)
        finally:
            self._lock.release()
        self._kpis = kpis
        if error is not None:
            raise error
        return dict(kpis)

    def _trim(self, f: h5py.File) -> None:
        """Cut every growing dataset back to what was committed (undo a partial block)."""
        n = self._n
        f["time"].resize(n, axis=0)
        for path in {name.rsplit("/", 1)[0] + "/time" for name in self._series}:
            f[path].resize(n, axis=0)
        for name in self._series:
            f[name].resize(n, axis=0)
        for table, dss in self._table_ds.items():
            for col in dss:
                f[f"{table}/{col}"].resize(self._rows[table], axis=0)

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if not self._closed:
                self.close(complete=True)
            return
        if self._closed:
            return
        try:
            self.close(complete=False)
        except Exception as close_exc:  # keep the original exception as the one raised
            warnings.warn(f"closing {self.path} after {exc_type.__name__} failed: {close_exc!r}",
                          RuntimeWarning, stacklevel=2)
