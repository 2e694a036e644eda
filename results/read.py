"""The one reader of tsodso results files: opening, metadata, tables, cost, interface and
grid series, violation counts, and the files of a compare directory in their order.

Everything that reads a results file (the analyst API, the KPIs, the report, the export)
goes through these functions, so the layout is interpreted in one place. Functions taking an
open ``h5py.File`` read only the first ``n`` steps (the steps written, see
``steps_written``); functions taking a path open and close the file themselves.

Opening never waits: ``open_results`` checks the file without HDF5 first
(``results.integrity``): a truncated or foreign file fails at once with one line. A file being
written (its writer holds the lock) is opened for SWMR reading and shows the committed steps.
A killed run's file is still flagged "open for writing"; the first open clears the flags
(under the writer lock), after which plain h5py and xarray open it too.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import h5py
import numpy as np
from tsodso.core.vocabulary import COST_COLUMNS
from tsodso.results.format import FORMAT_NAME, SCHEME_ATTR_DEFAULTS
from tsodso.results.integrity import (
    WRITE_FLAGS,
    ResultsFileError,
    WriterLock,
    check_intact,
    clear_write_flags,
    is_live,
    superblock,
)

TABLES = ("activations", "conflicts", "events")
#: Columns of the events table (files older than it read as an empty table).
EVENT_COLUMNS = ("step", "kind", "grid", "detail")
#: Rows per slab when a time series is scanned (a year of quarter-hours never sits in memory).
SLAB_ROWS = 8192


# -- files --------------------------------------------------------------------------------


def _reason(exc: OSError) -> str:
    """The short reason of an h5py open error (the part in parentheses)."""
    text = str(exc)
    return text[text.find("(") + 1:text.rfind(")")] if "(" in text else text


def open_results(path: str | Path) -> h5py.File:
    """Open a results file read-only, at once: also while it is written or after its writer
    died. ResultsFileError (one line) for a missing, foreign, truncated or damaged file."""
    path = Path(path)
    if is_live(path):
        superblock(path)
        try:
            return h5py.File(path, "r", swmr=True, locking=False)
        except OSError as exc:
            raise ResultsFileError(f"{path}: cannot open while it is written: "
                                   f"{_reason(exc)}") from None
    sb = check_intact(path)
    flagged = bool(sb.flags & WRITE_FLAGS)
    if flagged:  # a killed writer: clear its flags so that every tool can open the file
        try:
            lock = WriterLock(path, create=False)
        except ResultsFileError:
            pass  # read-only file or a new writer: read it as SWMR below
        else:
            try:
                flagged = not clear_write_flags(path)
            except (OSError, ResultsFileError):
                pass
            finally:
                lock.release()
    try:
        return h5py.File(path, "r", swmr=flagged, locking=False)
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot open: {_reason(exc)}") from None


def attr_value(value: object) -> object:
    """An HDF5 attribute as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def is_results(f: h5py.File) -> bool:
    """True if an open HDF5 file carries the tsodso results format marker."""
    return attr_value(f.attrs.get("format")) == FORMAT_NAME


def check_format(f: h5py.File, path: str | Path) -> None:
    """Raise ValueError unless ``f`` (opened from ``path``) is a tsodso results file."""
    if not is_results(f):
        fmt = attr_value(f.attrs.get("format"))
        raise ValueError(f"{path} is not a tsodso results file (format={fmt!r})")


def is_results_file(path: str | Path) -> bool:
    """True if ``path`` is an HDF5 file with the tsodso results format marker."""
    try:
        with open_results(path) as f:
            return is_results(f)
    except (OSError, ResultsFileError):
        return False


def time_series_paths(f: h5py.File) -> list[str]:
    """Paths of every dataset indexed by time along axis 0 (the time scales excluded)."""
    paths = []
    for grid in f["grids"].values():
        paths += [grid["vm_pu"].name, grid["branch_loading_percent"].name]
    for group in ("interfaces", "needs", "costs", "unserved"):
        if group not in f:  # files written before /unserved existed
            continue
        for ds in f[group].values():
            if isinstance(ds, h5py.Dataset) and ds.maxshape[0] is None and not ds.is_scale:
                paths.append(ds.name)
    return paths


def steps_written(f: h5py.File) -> int:
    """Number of steps present in every time-axis dataset (normally ``len(/time)``)."""
    return min([f["time"].shape[0], *(f[p].shape[0] for p in time_series_paths(f))])


def names(ds: h5py.Dataset) -> list[str]:
    """A name dataset (bus, branch, interface, grid names) as a list of str."""
    return [str(s) for s in ds.asstr()[:]]


# -- metadata -----------------------------------------------------------------------------


def root_meta(f: h5py.File) -> dict:
    """Root attributes as plain values: ``start`` as datetime, ``complete`` as bool, and the
    scheme description attributes (``SCHEME_ATTR_DEFAULTS``) filled in for older files."""
    meta = {k: attr_value(v) for k, v in f.attrs.items()}
    meta["start"] = datetime.fromisoformat(meta["start"])
    meta["complete"] = bool(meta["complete"])
    for key, default in SCHEME_ATTR_DEFAULTS.items():
        meta.setdefault(key, default)
    for key in ("scheme_counterfactual", "scheme_balances_areas"):
        meta[key] = bool(meta[key])
    meta["scheme_order"] = int(meta["scheme_order"])
    scheme = str(meta.get("scheme", ""))
    meta["scheme_label"] = meta["scheme_label"] or scheme
    meta["scheme_short"] = meta["scheme_short"] or meta["scheme_label"]
    return meta


def meta_of(f: h5py.File) -> dict:
    """``root_meta`` plus steps_written, grids (name -> attributes), kpis and timing."""
    meta = root_meta(f)
    meta["steps_written"] = steps_written(f)
    meta["grids"] = {
        name: {k: attr_value(v) for k, v in g.attrs.items()} for name, g in f["grids"].items()
    }
    meta["kpis"] = {k: attr_value(v) for k, v in f["kpis"].attrs.items()}
    meta["timing"] = {k: attr_value(v) for k, v in f["timing"].attrs.items()}
    return meta


def read_meta(path: str | Path) -> dict:
    """``meta_of`` a results file; ValueError if it is not one."""
    with open_results(path) as f:
        check_format(f, path)
        return meta_of(f)


def step_times(start: datetime, step_s: int, n: int) -> list[datetime]:
    """Start time of steps 0..n-1: ``start + step * step_s``."""
    return [start + timedelta(seconds=i * step_s) for i in range(n)]


# -- event tables -------------------------------------------------------------------------


def decode(raw: np.ndarray) -> np.ndarray:
    """Fixed-length UTF-8 byte strings as a str array (fast path for ASCII)."""
    try:
        return raw.astype("U")
    except UnicodeDecodeError:
        uniq, inv = np.unique(raw, return_inverse=True)
        return np.array([u.decode("utf-8") for u in uniq])[inv.reshape(-1)]


def table_columns(group: h5py.Group) -> list[str]:
    """Column names of a table group, in file order."""
    return [str(attr_value(c)) for c in group.attrs["columns"]]


def read_table(f: h5py.File, name: str, n: int | None = None,
               columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """An event table ("activations" or "conflicts") as column name -> 1-D array.

    Only rows of steps < ``n`` (default: the steps written) are kept: a writer that died
    mid-block can leave rows of steps beyond them. String columns come back as ``str``
    arrays. ``columns`` picks a subset (in file order); default all.
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {TABLES}")
    n = steps_written(f) if n is None else n
    if name not in f:  # a file written before the table existed (events): no rows
        cols = [c for c in EVENT_COLUMNS if columns is None or c in columns]
        return {c: np.zeros(0, dtype=np.int64 if c == "step" else str) for c in cols}
    group = f[name]
    cols = table_columns(group)
    rows = min(group[c].shape[0] for c in cols)
    keep = group["step"][:rows] < n
    out: dict[str, np.ndarray] = {}
    for col in cols:
        if columns is not None and col not in columns:
            continue
        ds = group[col]
        if ds.dtype.kind == "O":
            values = np.asarray(ds.asstr()[:rows], dtype=object).astype(str)
        else:
            values = ds[:rows]
            if values.dtype.kind == "S":
                values = decode(values)
        out[col] = values[keep]
    return out


def table_slabs(group: h5py.Group, n: int, rows: int = 65536,
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Row slabs (r0, r1, mask of rows whose step < n) of a table group."""
    total = min(group[c].shape[0] for c in table_columns(group))
    for r0 in range(0, total, rows):
        r1 = min(r0 + rows, total)
        yield r0, r1, group["step"][r0:r1] < n


def load_table(path: str | Path, name: str) -> dict[str, np.ndarray]:
    """``read_table`` of a results file (all columns, the steps written)."""
    with open_results(path) as f:
        return read_table(f, name)


# -- time series --------------------------------------------------------------------------


def slabs(ds: h5py.Dataset, n: int, rows: int = SLAB_ROWS) -> Iterator[np.ndarray]:
    """Rows [0, n) of a dataset, a slab at a time."""
    for i in range(0, n, rows):
        yield ds[i : min(i + rows, n)]


@dataclass(frozen=True)
class CostSeries:
    """EUR incurred per step: the cost columns and the DSO cost per DSO grid."""

    parts: dict[str, np.ndarray]  # COST_COLUMNS -> (n,)
    dso_grid: list[str]
    dso_by_grid: np.ndarray  # (n, G)


def read_costs(f: h5py.File, n: int) -> CostSeries:
    """The per-step costs of the first ``n`` steps."""
    g = f["costs"]
    return CostSeries({key: g[key][:n].astype(float) for key in COST_COLUMNS},
                      names(g["dso_grid"]), g["dso_by_grid"][:n].astype(float))


@dataclass(frozen=True)
class InterfaceSeries:
    """TSO-DSO exchange per step, positive from T into D."""

    name: list[str]
    grid: list[str]  # D grid behind each interface
    p_mw: np.ndarray  # (n, I)
    q_mvar: np.ndarray  # (n, I)
    tap_pos: np.ndarray | None = None  # (n, I) tap positions (None: file of format < 3)


def read_interfaces(f: h5py.File, n: int) -> InterfaceSeries:
    """The interface exchange (and tap positions, from format 3) of the first ``n`` steps."""
    g = f["interfaces"]
    return InterfaceSeries(names(g["name"]), names(g["grid"]), g["p_mw"][:n].astype(float),
                           g["q_mvar"][:n].astype(float),
                           g["tap_pos"][:n].astype(float) if "tap_pos" in g else None)


# -- grid series and violations -----------------------------------------------------------


@dataclass(frozen=True)
class GridLimits:
    """Voltage band and loading limit of one grid (attributes of /grids/<grid>)."""

    level: str
    vm_min_pu: float
    vm_max_pu: float
    loading_max_percent: float


def grid_limits(grid: h5py.Group) -> GridLimits:
    """The level and limits of one grid group."""
    a = grid.attrs
    return GridLimits(str(attr_value(a["level"])), float(a["vm_min_pu"]), float(a["vm_max_pu"]),
                      float(a["loading_max_percent"]))


def violations(vm: np.ndarray, loading: np.ndarray, lim: GridLimits) -> tuple[int, int]:
    """(bus-steps outside the voltage band, branch-steps above the loading limit) of arrays
    of one grid. NaN values (not computed) never count. The one definition of a violation."""
    volt = int(np.count_nonzero((vm < lim.vm_min_pu) | (vm > lim.vm_max_pu)))
    over = int(np.count_nonzero(loading > lim.loading_max_percent))
    return volt, over


def grid_slabs(grid: h5py.Group, n: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first row, vm_pu, branch_loading_percent) slabs of one grid's first ``n`` steps."""
    for r0 in range(0, n, SLAB_ROWS):
        r1 = min(r0 + SLAB_ROWS, n)
        yield r0, grid["vm_pu"][r0:r1], grid["branch_loading_percent"][r0:r1]


def count_violations(grid: h5py.Group, n: int) -> tuple[int, int]:
    """``violations`` of one grid over its first ``n`` steps."""
    lim = grid_limits(grid)
    volt = over = 0
    for _, vm, ld in grid_slabs(grid, n):
        v, o = violations(vm, ld, lim)
        volt += v
        over += o
    return volt, over


def level_violations(path: Path | str, level: str) -> tuple[int, int]:
    """(bus-steps outside the band, branch-steps above the loading limit) summed over the
    grids of one level (``"T"`` or ``"D"``) of a results file."""
    volt = over = 0
    with h5py.File(path, "r", swmr=True) as f:
        n = steps_written(f)
        for grid in f["grids"].values():
            if grid.attrs["level"] == level:
                v, o = count_violations(grid, n)
                volt += v
                over += o
    return volt, over


# -- directories --------------------------------------------------------------------------


def summary_order(directory: Path) -> list[str]:
    """Scheme order of DIR/summary.csv (empty if there is none)."""
    summary = Path(directory) / "summary.csv"
    if not summary.is_file():
        return []
    with summary.open(newline="", encoding="utf-8") as fh:
        return [row["scheme"] for row in csv.DictReader(fh) if row.get("scheme")]


def candidate_files(source: str | Path) -> list[Path]:
    """``[source]`` for a file, the ``*.h5`` files (by name) of a directory."""
    src = Path(source)
    if src.is_dir():
        return sorted(src.glob("*.h5"))
    if src.is_file():
        return [src]
    raise FileNotFoundError(f"no such file or directory: {src}")


def run_order(source: str | Path, metas: Sequence[dict]) -> list[int]:
    """Indices of ``metas`` (of files of ``source``) in display order: the order of
    summary.csv first, then ``scheme_order``, then file order (stable)."""
    listed = summary_order(Path(source)) if Path(source).is_dir() else []

    def key(i: int) -> tuple[int, int, int]:
        scheme = metas[i].get("scheme")
        first = listed.index(scheme) if scheme in listed else len(listed)
        return first, int(metas[i].get("scheme_order", SCHEME_ATTR_DEFAULTS["scheme_order"])), i

    return sorted(range(len(metas)), key=key)
