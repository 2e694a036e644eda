"""Studies: many runs of one base scenario (schemes x seeds x days x swept parameters) as
Dask tasks, one results file per run, one tidy table of every run's KPIs.

    study = load_study("studies/penalties.toml")     # every case validated here
    table = run_study(study, Path("out/penalties"))  # LocalCluster, or scheduler="tcp://..."

A study file (TOML, docs/studies.md):

    name = "penalties"
    scenario = "default"                 # built-in name or a file (relative to this file)
    schemes = ["centralized", "common"]  # or "all"
    reference = "common"                 # paired differences are taken against this scheme
    seeds = "1-5"                        # or a list [1, 2, 7]
    days = [2016-05-30T10:00:00]         # run.start values (dates or date-times)
    [set]                                # overrides of every case, by dotted key
    "run.steps" = 24
    [sweep]                              # full grid: every combination of these values
    "penalties.overload_eur_per_mwh" = [300.0, 3000.0]
    [[cases]]                            # and/or a list of cases (each crossed with [sweep])
    "penalties.voltage_eur_per_pu_h" = 5000.0

Each run is a pure task (scenario dict, scheme, output path -> KPI row): it writes its file
under a temporary name and renames it when complete, so a killed worker never leaves a file
that counts as finished and Dask can run the task again elsewhere. Re-running a study skips
the runs whose file is complete and holds the same scenario and scheme.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import re
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tsodso.scenarios.load import ScenarioError, builtin_names, to_toml
from tsodso.scenarios.schema import Scenario

log = logging.getLogger("tsodso")

#: Keys a study file may have.
STUDY_KEYS = ("name", "description", "scenario", "schemes", "reference", "seeds", "days",
              "set", "sweep", "cases")
#: Peak memory of one run (GB), to size a LocalCluster: the built-in tiny grid (about 0.4 GB
#: resident) and any other grid (0.55-0.81 GB resident per worker measured on `default`
#: runs of studies/penalties.toml, the profiles memory-mapped from the SimBench cache; the
#: margin covers larger grids and longer runs).
PEAK_GB = {"tiny": 0.5, "other": 1.5}
#: Suffix of the temporary file a run writes before it is renamed into place.
PART = ".part"
#: Most runs in one study (a typo in a range should not plan a billion runs).
MAX_RUNS = 100_000


class StudyError(ValueError):
    """A study that cannot be run; the message is one line naming the problem."""


@dataclass
class Study:
    """A validated study: the base scenario, what varies, and where it came from."""

    name: str
    scenario: str  # built-in name or absolute path of the base scenario file
    schemes: list[str]
    seeds: list[int]
    days: list[datetime]
    fixed: dict[str, Any] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    params: list[str] = field(default_factory=list)  # keys that differ between cases
    reference: str | None = None
    description: str = ""
    source: str = "study"


@dataclass
class RunSpec:
    """One run of a study: its case, draw and scheme, validated scenario and output file."""

    case: dict[str, Any]
    day: datetime
    seed: int
    scheme: str
    scenario: Scenario
    out: Path

    def row(self, root: Path) -> dict[str, Any]:
        """The columns of the runs table that identify this run."""
        return {**self.case, "day": self.day, "seed": self.seed, "scheme": self.scheme,
                "file": str(self.out.relative_to(root))}


# -- reading a study file --------------------------------------------------------------------


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}, 'c.d': 2} -> {'a.b': 1, 'c.d': 2} (TOML's dotted and quoted keys)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def parse_seeds(value: Any, source: str = "seeds") -> list[int]:
    """Seeds from a list of integers, one integer, a range 'A-B' (both included) or ranges
    and integers separated by commas ('1-3,7')."""
    if isinstance(value, bool):
        raise StudyError(f"{source}: expected a list of integers or a range 'A-B'")
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str) and "," in value:
        seeds = [x for part in value.split(",") for x in parse_seeds(part, source)]
        return parse_seeds(seeds, source)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", value)
        if m is None:
            raise StudyError(f"{source}: {value!r} is not a seed or a range 'A-B' (e.g. 1-10)")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last < first:
            raise StudyError(f"{source}: range {value!r} is empty (end before start)")
        if last - first >= MAX_RUNS:
            raise StudyError(f"{source}: range {value!r} has more than {MAX_RUNS} seeds")
        return list(range(first, last + 1))
    if not isinstance(value, list) or not value or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise StudyError(f"{source}: expected a non-empty list of integers >= 0 or a range "
                         "'A-B'")
    if len(set(value)) != len(value):
        raise StudyError(f"{source}: a seed is listed twice")
    return list(value)


def _day(value: Any, source: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return _day(datetime.fromisoformat(value), source)
        except ValueError:
            pass
    raise StudyError(f"{source}: {value!r} is not a date or date-time (e.g. 2016-05-30 or "
                     "2016-05-30T10:00:00)")


def _schemes(value: Any, source: str) -> list[str]:
    from tsodso.coordination.schemes import scheme_names

    known = list(scheme_names())
    if value == "all":
        return known
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",")]
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise StudyError(f"{source}: schemes: expected \"all\" or a list of scheme names")
    unknown = [s for s in value if s not in known]
    if unknown:
        raise StudyError(f"{source}: schemes: unknown scheme '{unknown[0]}'; known: "
                         f"{', '.join(known)}")
    if len(set(value)) != len(value):
        raise StudyError(f"{source}: schemes: a scheme is listed twice")
    return list(value)


def _grid(sweep: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(sweep, Mapping):
        raise StudyError(f"{source}: sweep must be a table of dotted keys and lists of values")
    flat = _flatten(sweep)
    for key, values in flat.items():
        if not isinstance(values, list) or not values:
            raise StudyError(f"{source}: sweep '{key}': expected a non-empty list of values")
    keys = list(flat)
    return [dict(zip(keys, combo, strict=True)) for combo in
            itertools.product(*(flat[k] for k in keys))]


def make_study(scenario: str, schemes: Any = "all", seeds: Any = None,
               days: Iterable[Any] | None = None, fixed: Mapping[str, Any] | None = None,
               sweep: Mapping[str, Any] | None = None,
               cases: list[Mapping[str, Any]] | None = None, reference: str | None = None,
               name: str = "study", description: str = "", source: str = "study") -> Study:
    """A study from its parts (what a study file holds); StudyError names the first problem.
    The cases are the list ``cases`` (default: one empty case), each crossed with every
    combination of ``sweep``; ``seeds`` and ``days`` default to the scenario's own."""
    names = _schemes(schemes, source)
    if reference is not None and reference not in names:
        raise StudyError(f"{source}: reference '{reference}' is not among the schemes")
    seed_list = None if seeds is None else parse_seeds(seeds, f"{source}: seeds")
    day_list = None if days is None else [_day(d, f"{source}: days") for d in days]
    if day_list is not None and (not day_list or len(set(day_list)) != len(day_list)):
        raise StudyError(f"{source}: days: expected a non-empty list without repeats")
    base_cases = [{}] if cases is None else cases
    if not isinstance(base_cases, list) or not all(isinstance(c, Mapping) for c in base_cases):
        raise StudyError(f"{source}: cases must be a list of tables ([[cases]])")
    grid = _grid(sweep or {}, source)
    combined = []
    for case in base_cases:
        for point in grid:
            merged = {**_flatten(case), **point}
            for k in merged:
                if k in ("run.seed", "run.start"):
                    raise StudyError(f"{source}: '{k}' is set by seeds / days, not by a case")
            combined.append(merged)
    keys: list[str] = []
    for c in combined:
        keys += [k for k in c if k not in keys]
    params = [k for k in keys if len({_slug(c.get(k)) for c in combined}) > 1]
    folders = [case_dir(c, params) for c in combined]
    if len(set(folders)) != len(folders):
        twice = next(f for f in folders if folders.count(f) > 1)
        raise StudyError(f"{source}: the case {twice} is listed twice (cases x sweep)")
    fixed_flat = _flatten(fixed or {})
    for k in ("run.seed", "run.start"):
        if k in fixed_flat:
            raise StudyError(f"{source}: set '{k}': give seeds / days instead")
    study = Study(name=name, scenario=scenario, schemes=names, seeds=seed_list or [],
                  days=day_list or [], fixed=fixed_flat, cases=combined, params=params,
                  reference=reference, description=description, source=source)
    if not study.seeds or not study.days:  # the base scenario's own seed and start
        base = _load(study, {})
        study.seeds = study.seeds or [base.run.seed]
        study.days = study.days or [base.run.start]
    n = len(study.cases) * len(study.seeds) * len(study.days) * len(study.schemes)
    if n > MAX_RUNS:
        raise StudyError(f"{source}: {n} runs; at most {MAX_RUNS} per study")
    return study


def load_study(path: str | Path) -> Study:
    """Read and check a study file (not yet its cases: ``plan`` validates those)."""
    from tsodso.scenarios.load import read_text

    p = Path(path)
    try:
        data = tomllib.loads(read_text(p))
    except ScenarioError as exc:
        raise StudyError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{p}: not valid TOML: {exc}") from None
    unknown = [k for k in data if k not in STUDY_KEYS]
    if unknown:
        raise StudyError(f"{p}: unknown key '{unknown[0]}' (study keys: "
                         f"{', '.join(STUDY_KEYS)})")
    if "scenario" not in data or not isinstance(data["scenario"], str):
        raise StudyError(f"{p}: missing key 'scenario' (a built-in name or a scenario file)")
    scenario = data["scenario"]
    if scenario not in builtin_names() or Path(scenario).suffix:
        candidate = Path(scenario)
        if not candidate.is_absolute():
            candidate = p.resolve().parent / candidate
        if not candidate.is_file():
            raise StudyError(f"{p}: scenario '{scenario}': no such file and no built-in "
                             f"scenario of that name (built-ins: {', '.join(builtin_names())})")
        scenario = str(candidate)
    days = data.get("days")
    if days is not None and not isinstance(days, list):
        days = [days]
    for key, kind in (("name", str), ("description", str), ("reference", str),
                      ("set", dict), ("sweep", dict), ("cases", list)):
        if key in data and not isinstance(data[key], kind):
            raise StudyError(f"{p}: key '{key}': expected a {kind.__name__}")
    return make_study(scenario, data.get("schemes", "all"), data.get("seeds"), days,
                      data.get("set"), data.get("sweep"), data.get("cases"),
                      data.get("reference"), name=data.get("name", p.stem),
                      description=data.get("description", ""), source=str(p))


# -- planning: every case validated, one output path per run ----------------------------------


def _load(study: Study, overrides: Mapping[str, Any]) -> Scenario:
    from tsodso.api import load_scenario

    return load_scenario(study.scenario, **{**study.fixed, **overrides})


def _slug(value: Any) -> str:
    """A value as a file-name part: readable where possible, unique always."""
    text = repr(value) if isinstance(value, float) else str(value)
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", text)[:40]
    if safe != text:
        safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return safe


def case_dir(case: Mapping[str, Any], params: list[str]) -> str:
    """Folder of a case: its swept parameters as key=value joined by ',' ('base' if none)."""
    parts = [f"{k}={_slug(case.get(k))}" for k in params]
    name = ",".join(parts) or "base"
    if len(name) > 200:
        name = name[:150] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def default_root(study: Study) -> Path:
    """Default output folder of a study: ``out/<name>`` (name reduced to safe characters)."""
    return Path("out") / (re.sub(r"[^A-Za-z0-9_.-]+", "_", study.name).lstrip(".") or "study")


def day_dir(day: datetime) -> str:
    return day.strftime("%Y-%m-%dT%H%M")


def plan(study: Study, root: Path) -> list[RunSpec]:
    """Every run of the study with its validated scenario and output file
    ``ROOT/<case>/<day>/seed-<seed>/<scheme>.h5``. A case that does not validate raises
    StudyError naming the case and the key, before anything runs."""
    specs = []
    for case in study.cases:
        shown = ", ".join(f"{k}={v!r}" for k, v in case.items()) or "base case"
        for day in study.days:
            for seed in study.seeds:
                try:
                    sc = _load(study, {**case, "run.start": day, "run.seed": seed})
                except ScenarioError as exc:
                    raise StudyError(f"{study.source}: case ({shown}), day {day:%Y-%m-%d %H:%M}"
                                     f", seed {seed}: {exc}") from None
                folder = root / case_dir(case, study.params) / day_dir(day) / f"seed-{seed}"
                specs.extend(RunSpec(case, day, seed, s, sc, folder / f"{s}.h5")
                             for s in study.schemes)
    return specs


# -- one run: the Dask task --------------------------------------------------------------------


def finished(out: Path, scenario_toml: str, scheme: str) -> dict[str, Any] | None:
    """The KPIs and labels of a complete results file of this scenario and scheme, or None
    (no file, an incomplete or unreadable one, or another run's)."""
    from tsodso.results.kpis import read_kpis
    from tsodso.results.read import check_format, meta_of, open_results

    if not out.is_file():
        return None
    try:
        with open_results(out) as f:
            check_format(f, out)
            meta = meta_of(f)
            if not meta["complete"] or meta["scheme"] != scheme or \
                    str(meta["scenario_toml"]) != scenario_toml:
                return None
            kpis = read_kpis(f)
    except (OSError, ValueError, KeyError):
        return None
    return {"status": "ok", "error": "", **kpis,
            "scheme_label": str(meta["scheme_label"]), "scheme_order": int(meta["scheme_order"]),
            "run_s": float(meta["timing"].get("total_s", math.nan))}


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def execute(scenario: dict[str, Any], scheme: str, out: str, row: dict[str, Any]) -> dict:
    """Run one scheme on one scenario into ``out``; returns ``row`` with status, KPIs, labels.

    Pure: the same arguments give the same file and row, so Dask may run it again after a
    worker is lost. The file is written as ``.<name>.<random>.part`` and renamed to ``out``
    only when complete. A run that fails returns status 'failed' and its one-line reason.
    """
    from tsodso.runner import run

    target = Path(out)
    sc = Scenario.model_validate(scenario)
    done = finished(target, to_toml(sc), scheme)
    if done is not None:  # finished by an earlier attempt of this task
        return {**row, **done, "peak_mb": _peak_mb()}
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{PART}")
    t0 = time.perf_counter()
    setup_log = logging.getLogger("tsodso.setup")
    level = setup_log.level
    setup_log.setLevel(logging.WARNING)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        run(sc, scheme, tmp, profile=True)
        os.replace(tmp, target)
    except Exception as exc:  # recorded, and the rest of the study goes on
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return {**row, "status": "failed", "error": reason, "peak_mb": _peak_mb(),
                "run_s": time.perf_counter() - t0}
    finally:
        setup_log.setLevel(level)
    done = finished(target, to_toml(sc), scheme)
    if done is None:
        return {**row, "status": "failed", "error": "the results file is not complete",
                "peak_mb": _peak_mb(), "run_s": time.perf_counter() - t0}
    return {**row, **done, "peak_mb": _peak_mb()}


# -- the study on Dask ------------------------------------------------------------------------


def peak_gb(study: Study) -> float:
    """Expected peak memory of one run of the study (GB), from its grid."""
    base = _load(study, {})
    return PEAK_GB["tiny"] if base.grid.source == "tiny" else PEAK_GB["other"]


def local_workers(n_runs: int, run_gb: float) -> int:
    """Workers of a LocalCluster: one per core, as many as fit in the available memory at
    ``run_gb`` per run, no more than there are runs, at least one."""
    import psutil

    cores = os.cpu_count() or 1
    fit = int(psutil.virtual_memory().available / 1e9 // max(run_gb, 0.1))
    return max(1, min(cores, fit, n_runs))


def _write_table(rows: list[dict[str, Any]], study: Study, root: Path) -> Any:
    import pandas as pd

    from tsodso.results.kpis import KPI_UNITS
    from tsodso.results.study import STUDY_META, TABLE, TABLE_CSV

    front = [*study.params, "day", "seed", "scheme", "status", "error"]
    back = ["scheme_label", "scheme_order", "run_s", "peak_mb", "file"]
    table = pd.DataFrame(rows)
    for col in [*front, *KPI_UNITS, *back]:
        if col not in table.columns:
            table[col] = math.nan
    table = table[[*front, *KPI_UNITS, *back]]
    table["day"] = pd.to_datetime(table["day"])
    table["seed"] = table["seed"].astype("int64")
    table["error"] = table["error"].fillna("").astype(str)
    root.mkdir(parents=True, exist_ok=True)
    meta = {"name": study.name, "description": study.description,
            "scenario": study.scenario, "schemes": study.schemes,
            "reference": study.reference, "params": study.params,
            "seeds": study.seeds, "days": [d.isoformat() for d in study.days],
            "fixed": {k: _jsonable(v) for k, v in study.fixed.items()},
            "cases": [{k: _jsonable(v) for k, v in c.items()} for c in study.cases],
            "source": study.source}
    _atomic(root / STUDY_META, lambda p: p.write_text(json.dumps(meta, indent=1),
                                                      encoding="utf-8"))
    _atomic(root / TABLE, lambda p: table.to_parquet(p, index=False))
    _atomic(root / TABLE_CSV, lambda p: table.to_csv(p, index=False))
    return table


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list) or value is None \
        else str(value)


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{PART}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _stale_parts(root: Path) -> int:
    """Remove the temporary files of runs that were killed (they never count as finished)."""
    n = 0
    for p in root.rglob(f".*.h5.*{PART}"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def run_study(study: Study | str | Path, root: str | Path | None = None,
              scheduler: str | None = None, workers: int | None = None,
              progress: bool = False,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Run every run of ``study`` (a ``Study`` or a study file) not yet finished under
    ``root`` (default ``out/<study name>``) as Dask tasks and write ``root/runs.parquet`` and
    ``runs.csv`` (one row per run); returns that table (a pandas DataFrame). Also
    ``tsodso.run_study``.

    ``scheduler``: address of an existing Dask scheduler (``tcp://HOST:PORT``); otherwise a
    LocalCluster of ``workers`` processes (default: ``local_workers``), one thread each.
    Each finished run is passed to ``on_result`` (row dict). The table is written also when
    the study is interrupted (with the runs finished so far)."""
    if not isinstance(study, Study):
        study = load_study(study)
    if root is None:
        root = default_root(study)
    root = Path(root).absolute()  # the workers write there, whatever their own folder
    specs = plan(study, root)
    root.mkdir(parents=True, exist_ok=True)
    stale = _stale_parts(root)
    rows: dict[int, dict[str, Any]] = {}
    todo = []
    for i, spec in enumerate(specs):
        done = finished(spec.out, to_toml(spec.scenario), spec.scheme)
        if done is not None:
            rows[i] = {**spec.row(root), **done, "peak_mb": math.nan}
        else:
            todo.append(i)
    log.info("study '%s': %d runs (%d cases x %d days x %d seeds x %d schemes); %d finished "
             "before, %d to run%s", study.name, len(specs), len(study.cases), len(study.days),
             len(study.seeds), len(study.schemes), len(rows), len(todo),
             f"; removed {stale} unfinished temporary file(s)" if stale else "")
    try:
        if todo:
            _run_on_dask(study, specs, todo, root, rows, scheduler, workers, progress,
                         on_result)
    finally:
        table = _write_table([rows[i] for i in sorted(rows)], study, root)
    failed = int((table["status"] != "ok").sum())
    log.info("study '%s': %d runs in %s/runs.parquet%s", study.name, len(table), root,
             f"; {failed} failed (see the 'error' column)" if failed else "")
    return table


def _run_on_dask(study: Study, specs: list[RunSpec], todo: list[int], root: Path,
                 rows: dict[int, dict[str, Any]], scheduler: str | None, workers: int | None,
                 progress: bool, on_result: Callable[[dict[str, Any]], None] | None) -> None:
    from contextlib import ExitStack

    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    # the local cluster's shutdown warns when a worker process takes over 4 s to exit (it is
    # then ended; the runs are finished by then): not the user's concern
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)

    with ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except OSError as exc:
                raise StudyError(f"cannot reach the Dask scheduler at {scheduler}: "
                                 f"{exc}") from None
        else:
            n = workers or local_workers(len(todo), peak_gb(study))
            cluster = stack.enter_context(LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                memory_limit="auto", silence_logs=logging.WARNING))
            client = stack.enter_context(Client(cluster))
            log.info("study '%s': LocalCluster of %d worker(s)", study.name, n)
        index: dict[Any, int] = {}
        futures = []
        for i in todo:
            s = specs[i]
            fut = client.submit(execute, s.scenario.model_dump(mode="python"), s.scheme,
                                str(s.out), s.row(root), pure=False)
            index[fut.key] = i
            futures.append(fut)
        bar = stack.enter_context(tqdm(total=len(specs), initial=len(specs) - len(todo),
                                       unit="run", desc=study.name, disable=not progress))
        for fut in as_completed(futures):
            i = index[fut.key]
            try:
                row = fut.result()
            except Exception as exc:  # e.g. KilledWorker after repeated worker deaths
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                row = {**specs[i].row(root), "status": "failed", "error": reason}
            rows[i] = row
            bar.update(1)
            if not progress:  # no bar (not a terminal): one line per run instead
                what = (f"social cost {row['social_cost_eur']:,.0f} EUR"
                        if row.get("status") == "ok" else f"failed: {row.get('error', '')}")
                log.info("[%d/%d] %s: %s", len(rows), len(specs), row["file"], what)
            if on_result is not None:
                on_result(row)
            fut.release()
