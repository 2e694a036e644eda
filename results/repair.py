"""Finishing the results file of a killed run (`tsodso repair FILE`), so that any HDF5 tool
opens it: its "open for writing" flags cleared, every dataset and table trimmed to the steps
written, their KPIs stored; ``complete`` stays False."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from tsodso.results.format import FORMAT_NAME, TABLE_COLUMNS
from tsodso.results.integrity import ResultsFileError, WriterLock, clear_write_flags
from tsodso.results.kpis import compute_kpis, write_kpis
from tsodso.results.read import attr_value, steps_written


def repair(path: str | Path) -> int:
    """Finish the file of a killed run so that any HDF5 tool opens it: clear its "open for
    writing" flags, trim every dataset and table to the steps written, store their KPIs.
    ``complete`` stays False. Returns the steps in the file."""
    path = Path(path)
    lock = WriterLock(path, create=False)
    try:
        clear_write_flags(path)
        try:
            f = h5py.File(path, "r+", locking=False)
        except OSError as exc:
            raise ResultsFileError(f"{path}: cannot open: {exc}") from None
        with f:
            if attr_value(f.attrs.get("format")) != FORMAT_NAME:
                raise ResultsFileError(f"{path}: not a tsodso results file")
            n = steps_written(f)
            f["time"].resize(n, axis=0)
            for grid in f["grids"].values():
                for name in ("vm_pu", "branch_loading_percent", "time"):
                    if name in grid:
                        grid[name].resize(n, axis=0)
            for group in ("interfaces", "needs", "costs", "unserved"):
                if group not in f:
                    continue
                for ds in f[group].values():
                    if isinstance(ds, h5py.Dataset) and ds.maxshape[0] is None:
                        ds.resize(n, axis=0)
            for table in TABLE_COLUMNS:
                if table not in f:
                    continue
                cols = [f[f"{table}/{c}"] for c in f[table]]
                rows = min(ds.shape[0] for ds in cols)
                keep = int(np.count_nonzero(f[f"{table}/step"][:rows] < n))
                for ds in cols:
                    ds.resize(keep, axis=0)
            write_kpis(f, compute_kpis(f))
    finally:
        lock.release()
    return n
