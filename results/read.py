"""Small readers for tsodso results files (metadata and event tables).

Files of runs that were killed are still flagged as open for SWMR writing; they can only be
opened with ``swmr=True``, which ``open_results`` falls back to.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import h5py
import numpy as np

TABLES = ("activations", "conflicts")


def open_results(path: str | Path) -> h5py.File:
    """Open a results file read-only, also while it is written or after its writer died."""
    try:
        return h5py.File(path, "r")
    except OSError:
        # a live or killed SWMR writer leaves the file flagged as open for writing
        return h5py.File(path, "r", swmr=True)


def time_series_paths(f: h5py.File) -> list[str]:
    """Paths of every dataset indexed by time along axis 0 (/time excluded)."""
    paths = []
    for grid in f["grids"].values():
        paths += [grid["vm_pu"].name, grid["branch_loading_percent"].name]
    for group in ("interfaces", "needs", "costs"):
        for ds in f[group].values():
            if isinstance(ds, h5py.Dataset) and ds.maxshape[0] is None:
                paths.append(ds.name)
    return paths


def steps_written(f: h5py.File) -> int:
    """Number of steps present in every time-axis dataset (normally ``len(/time)``)."""
    return min([f["time"].shape[0], *(f[p].shape[0] for p in time_series_paths(f))])


def _attr(value: object) -> object:
    """An HDF5 attribute as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_meta(path: str | Path) -> dict:
    """Root attributes (``start`` as datetime) plus steps_written, grids, kpis and timing."""
    with open_results(path) as f:
        meta = {k: _attr(v) for k, v in f.attrs.items()}
        if meta.get("format") != "tsodso-results":
            raise ValueError(f"{path} is not a tsodso results file")
        meta["start"] = datetime.fromisoformat(meta["start"])
        meta["complete"] = bool(meta["complete"])
        meta["steps_written"] = steps_written(f)
        meta["grids"] = {
            name: {k: _attr(v) for k, v in g.attrs.items()} for name, g in f["grids"].items()
        }
        meta["kpis"] = {k: _attr(v) for k, v in f["kpis"].attrs.items()}
        meta["timing"] = {k: _attr(v) for k, v in f["timing"].attrs.items()}
    return meta


def load_table(path: str | Path, name: str) -> dict[str, np.ndarray]:
    """One event table ("activations" or "conflicts") as column name -> 1-D array.

    String columns come back as object arrays of ``str``. Rows of steps beyond the
    steps written (possible only in a file whose writer died mid-block) are dropped.
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {TABLES}")
    with open_results(path) as f:
        group = f[name]
        columns = [_attr(c) for c in group.attrs["columns"]]
        rows = min(group[c].shape[0] for c in columns)
        keep = group["step"][:rows] < steps_written(f)
        out: dict[str, np.ndarray] = {}
        for col in columns:
            ds = group[col]
            if ds.dtype.kind in "SO":
                values = np.asarray(ds.asstr()[:rows], dtype=object)
            else:
                values = ds[:rows]
            out[col] = values[keep]
    return out
