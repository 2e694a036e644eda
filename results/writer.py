"""Block-wise HDF5 writer for one simulation run (format "tsodso-results", see results/format.py).

The file is written while the run goes: every group, dataset and attribute is created up
front (``layout.py``), then the file switches to HDF5 SWMR (single writer, multiple readers)
mode and each block of steps is appended to resizable, chunked, compressed datasets and
flushed. A run that is interrupted (exception, Ctrl-C, SIGTERM, SIGKILL) therefore leaves a
readable file holding every flushed step, with the root attribute ``complete`` still False.
The layout is documented in ``docs/results-format.md``.

One writer per file: the writer takes an exclusive lock on the file (``WriterLock``) before
it writes anything and holds it until the file is finished. ``resume=True`` reopens the file
of an interrupted run: it checks the layout, trims it to the committed steps and, while the
run is replayed from its start, checks every step it already holds against the replay
instead of writing it again.
"""

from __future__ import annotations

import warnings
from operator import itemgetter
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
from tsodso.core.records import Activation, Conflict, Event, StepRecord
from tsodso.core.vocabulary import COST_COLUMNS, COST_KEYS, SOCIAL_KEYS, UNSERVED_KEYS
from tsodso.results.format import FORMAT_NAME, TABLE_COLUMNS, TABLE_STR_BYTES
from tsodso.results.integrity import ResultsFileError, WriterLock, clear_write_flags
from tsodso.results.kpis import compute_kpis, write_kpis
from tsodso.results.layout import (
    NO_CHUNK_CACHE,
    FileLayout,
    GridLayout,
    RunMeta,
    Series,
    check_name,
)
from tsodso.results.read import attr_value, names, steps_written

__all__ = ["Activation", "Conflict", "Event", "StepRecord", "ResultsWriter", "RunMeta",
           "GridLayout", "ResultsFileError", "ResumeMismatch"]


class ResumeMismatch(ResultsFileError):
    """The replay of a resumed run differs from a step the file already holds."""



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
            check_name(g.name, "grid")
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
                f = h5py.File(self.path, "w", libver="latest", locking=False, **NO_CHUNK_CACHE)
                lay = FileLayout(meta, self._grids, block_steps)
                lay.create(f, interfaces, dso_grids)
                self._time, self._times = lay.time, lay.times
                self._series, self._table_ds = lay.series, lay.table_ds
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
            f = h5py.File(self.path, "r+", libver="latest", locking=False, **NO_CHUNK_CACHE)
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
                    self._series[f"/grids/{g.name}/{ds}"] = Series(f[f"grids/{g.name}/{ds}"],
                                                                   self.block_steps)
            for path in ("/interfaces/p_mw", "/interfaces/q_mvar", "/interfaces/tap_pos",
                         "/needs/tso_imbalance_mw",
                         "/needs/unresolved_imbalance_mw", "/costs/dso_by_grid",
                         *(f"/costs/{k}" for k in COST_COLUMNS),
                         *(f"/unserved/{k}" for k in UNSERVED_KEYS)):
                self._series[path] = Series(f[path], self.block_steps)
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

        step = rec.step
        acts = rec.activations
        if not {a.direction for a in acts} <= {-1, 1}:
            bad = next(a for a in acts if a.direction not in (-1, 1))
            raise ValueError(f"activation direction must be +1 or -1: {bad}")
        act_rows = [(step, a.resource, a.kind, a.grid, a.level, a.buyer, int(a.direction),
                     float(a.mw), float(a.price), float(a.cost), float(a.bid_price))
                    for a in acts]
        for c, col in enumerate(("resource", "kind", "grid", "level", "buyer"), start=1):
            known = self._valid_str.setdefault(col, set())
            # names repeat every step: only new ones are checked (in row order)
            new = set(map(itemgetter(c), act_rows)) - known
            for r in act_rows if new else ():
                if r[c] in new:
                    self._check_str(col, r[c])
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
            columns = list(zip(*rows, strict=True))  # the rows' values column by column
            for j, (col, kind, _, _) in enumerate(TABLE_COLUMNS[table]):
                values = columns[j]
                if kind == "str":
                    # names repeat from row to row: each distinct one encoded once
                    code = {v: v.encode("utf-8") for v in set(values)}
                    # the dataset's dtype carries h5py's UTF-8 marker (plain "S" is ASCII)
                    data = np.array([code[v] for v in values], dtype=dss[col].dtype)
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
