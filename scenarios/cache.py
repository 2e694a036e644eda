"""A converted copy of a SimBench grid and its profiles on disk, read in a fraction of a second.

Reading a SimBench grid (`simbench.get_simbench_net`) and its year of quarter-hour profiles
for every load, sgen and storage (`simbench.get_absolute_values`) takes 10-20 s and holds
about 2 GB. The first run on a machine converts both once into a cache entry:

- `net.pkl`: the pandapower net, pickled (exact: every table, dtype and index as read);
- per profile table and quantity (`load.p_mw`, ...): `<table>.<quantity>.npy`, the values as
  float64, rows x elements in C order (a row is contiguous), read with
  `np.load(mmap_mode="r")` so a run reads only the pages of its own rows, and
  `<table>.<quantity>.cols.npy`, the element indices of the columns;
- `manifest.json`, written last: the key, the files and their sizes, the profile shapes.

An entry is keyed by the grid code and the versions of simbench, pandapower and pandas (and
the format of this module): another version or code is another entry. Entries are built in a
temporary folder next to them and renamed into place, so concurrent runs or an interrupted
conversion never leave a half-written entry under the final name; an entry whose manifest,
files or sizes do not match is rebuilt, not trusted. The values are kept as float64: the
cache returns exactly what SimBench returns.

The cache folder is `~/.cache/tsodso`, or `$TSODSO_CACHE_DIR`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import pickle
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from tsodso.scenarios.load import ScenarioError

log = logging.getLogger("tsodso.setup")

#: Version of the on-disk layout; raise it when the files change.
FORMAT = 1
ENV = "TSODSO_CACHE_DIR"


def cache_dir() -> Path:
    """Where cache entries live: `$TSODSO_CACHE_DIR`, else `~/.cache/tsodso`."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tsodso"


def versions() -> dict[str, str]:
    """The library versions a cache entry depends on (read without importing them)."""
    out = {}
    for name in ("simbench", "pandapower", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "none"
    return out


def cache_key(code: str, vers: dict[str, str] | None = None) -> str:
    """Name of the entry of grid `code` under the given (default: installed) versions."""
    vers = versions() if vers is None else vers
    tag = "-".join(f"{k}{v}" for k, v in sorted(vers.items()))
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"simbench-{code}-{tag}-f{FORMAT}")
    digest = hashlib.sha256(f"{code}|{sorted(vers.items())}|{FORMAT}".encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


@dataclass(frozen=True)
class MappedProfile:
    """One profile table (rows x elements) backed by a memory-mapped file: the rows a run asks
    for are read, nothing else. `columns` are the element indices."""

    values: np.ndarray  # np.memmap (or an empty array for a table without elements)
    columns: pd.Index

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def _read(self, rows) -> np.ndarray:
        """float64 values of `rows`, all columns, in memory."""
        return np.array(self.values[np.asarray(rows)], dtype=float)

    def rows(self, rows, index: pd.Index | None = None) -> np.ndarray:
        """float64 values of `rows` (in memory), columns in the order of `index` if given
        (NaN for elements without a profile), like `DataFrame.reindex(columns=index)`."""
        out = self._read(rows)
        _release(self.values)
        if index is None:
            return out
        pos = self.columns.get_indexer(index)
        res = np.full((len(out), len(pos)), np.nan)
        ok = pos >= 0
        res[:, ok] = out[:, pos[ok]]
        return res


def _release(values: np.ndarray) -> None:
    """Drop the mapped file's pages from this process once rows are copied out: pages read
    through a memory map stay counted in the process's resident memory, so a year run would
    otherwise end up holding the whole profile file (the kernel keeps them in its page cache)."""
    mapped = getattr(values, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_DONTNEED)


def _name(table: str, col: str) -> str:
    return f"{table}.{col}"


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_simbench(code: str):
    import simbench as sb

    try:
        net = sb.get_simbench_net(code)
    except Exception as exc:  # simbench raises assorted errors for unknown codes
        raise ScenarioError(f"unknown SimBench grid code '{code}': {exc}") from None
    return net, sb.get_absolute_values(net, profiles_instead_of_study_cases=True)


def _write_entry(folder: Path, code: str, key: str, net, profiles) -> None:
    """Write an entry into `folder` (a fresh temporary folder); the manifest last."""
    files: dict[str, int] = {}
    with open(folder / "net.pkl", "wb") as f:
        pickle.dump(net, f, protocol=pickle.HIGHEST_PROTOCOL)
    files["net.pkl"] = (folder / "net.pkl").stat().st_size
    tables = []
    for (table, col), df in profiles.items():
        name = _name(table, col)
        np.save(folder / f"{name}.cols.npy", np.asarray(df.columns, dtype=np.int64))
        files[f"{name}.cols.npy"] = (folder / f"{name}.cols.npy").stat().st_size
        if df.shape[1]:
            np.save(folder / f"{name}.npy", np.ascontiguousarray(df.to_numpy(dtype=np.float64)))
            files[f"{name}.npy"] = (folder / f"{name}.npy").stat().st_size
        tables.append([table, col, int(df.shape[0]), int(df.shape[1])])
    manifest = {"key": key, "code": code, "format": FORMAT, "versions": versions(),
                "files": files, "tables": tables,
                "net_sha256": _file_hash(folder / "net.pkl")}
    for name in files:  # the data is on disk before the manifest says the entry is whole
        with open(folder / name, "rb") as f:
            os.fsync(f.fileno())
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / "manifest.json")


def _open_entry(folder: Path, key: str):
    """The net and mapped profiles of a complete entry; raises on anything that does not match
    its manifest (missing, truncated or foreign files)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("key") != key or manifest.get("format") != FORMAT:
        raise ValueError("manifest of another key or format")
    for name, size in manifest["files"].items():
        if (folder / name).stat().st_size != size:
            raise ValueError(f"{name}: size differs from the manifest")
    if _file_hash(folder / "net.pkl") != manifest["net_sha256"]:
        raise ValueError("net.pkl: checksum differs from the manifest")
    with open(folder / "net.pkl", "rb") as f:
        net = pickle.load(f)  # noqa: S301 - our own file, checked against its manifest
    profiles = {}
    for table, col, n_rows, n_cols in manifest["tables"]:
        name = _name(table, col)
        columns = pd.Index(np.load(folder / f"{name}.cols.npy"))
        if n_cols:
            values = np.load(folder / f"{name}.npy", mmap_mode="r")
        else:
            values = np.empty((n_rows, 0))
        if values.shape != (n_rows, n_cols) or len(columns) != n_cols \
                or values.dtype != np.float64 or (n_cols and not values.flags.c_contiguous):
            raise ValueError(f"{name}: shape or layout differs from the manifest")
        profiles[(table, col)] = MappedProfile(values, columns)
    return net, profiles


def _remove(path: Path) -> None:
    """Remove a folder without racing a reader: rename it out of the way first."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.rename(path, trash)
    except OSError:  # gone already, or not ours to remove: the rebuild will tell
        return
    shutil.rmtree(trash, ignore_errors=True)


def load_simbench(code: str, root: Path | None = None):
    """SimBench net and profiles of `code` from the cache, converted on the first call on a
    machine. The profiles are `MappedProfile`s (read-only); the net is a fresh object."""
    root = cache_dir() if root is None else Path(root)
    key = cache_key(code)
    entry = root / key
    if entry.is_dir():
        try:
            return _open_entry(entry, key)
        except Exception as exc:  # a broken entry is rebuilt, not trusted
            log.info("cache entry %s is broken (%s); rebuilding it", key, exc)
            _remove(entry)
    log.info("converting SimBench grid %s into the cache %s (once per version)", code, root)
    net, profiles = _read_simbench(code)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
    except OSError as exc:  # no writable cache folder: run from memory, as without a cache
        log.warning("cannot write the cache folder %s (%s); reading SimBench every run", root,
                    exc)
        return net, profiles
    try:
        try:
            _write_entry(tmp, code, key, net, profiles)
        except OSError as exc:  # e.g. a full disk (an entry takes about 2 GB): run from memory
            log.warning("cannot write the cache entry %s (%s); reading SimBench every run",
                        key, exc)
            return net, profiles
        del net, profiles
        try:
            os.rename(tmp, entry)
        except OSError:  # another process put a complete entry there first: use that
            if not (entry / "manifest.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _open_entry(entry, key)


#: Temporary and removed folders older than this are left-overs of interrupted conversions.
STALE_S = 3600.0


def _sweep(root: Path) -> None:
    """Remove left-overs of interrupted conversions and removals (not recent ones: another
    process may still be writing them)."""
    now = time.time()
    for p in root.iterdir():
        if p.name.startswith((".tmp-", ".trash-")) and p.is_dir():
            try:
                if now - p.stat().st_mtime > STALE_S:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                pass
