"""The Python API: load a scenario with overrides, run a scheme, compare schemes.

    import tsodso
    sc = tsodso.load_scenario("tiny", **{"run.steps": 8, "flexibility.pv.share": 0.3})
    run = tsodso.run(sc, "common", "tiny-common.h5")     # -> tsodso.results.Run
    table = tsodso.compare(sc, ["none", "common"], "out")  # -> KPI DataFrame, one row a scheme
    runs = tsodso.run_study("studies/penalties.toml", "out/penalties")  # one row a run (Dask)

(`run_study` is `tsodso.study.run_study`.)

Overrides are validated exactly like a scenario file (same schema, same one-line
`ScenarioError`), so a changed parameter cannot skip validation as `model_copy` would.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tsodso.scenarios.load import ScenarioError, _describe, builtin_names, builtin_path
from tsodso.scenarios.schema import BASE_DIR, Scenario

if TYPE_CHECKING:
    import pandas as pd

    from tsodso.results.api import Run

__all__ = ["ScenarioError", "compare", "load_scenario", "run"]


def _set(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    """Set `data[a][b][c] = value` for 'a.b.c' (or 'a__b__c'), creating tables as needed."""
    keys = dotted.replace("__", ".").split(".")
    if not all(keys):
        raise ScenarioError(f"{source}: override '{dotted}': empty key")
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ScenarioError(f"{source}: override '{dotted}': "
                                f"key '{'.'.join(keys[:i + 1])}' is not a table")
        node = child
    if isinstance(value, Mapping):  # a whole (partial) table: merge key by key
        for key, val in value.items():
            _set(data, f"{dotted}.{key}", val, source)
    else:
        node[keys[-1]] = value


def _read(name_or_path: str | Path) -> tuple[dict[str, Any], str, Path | None]:
    """The raw TOML data of a built-in or a file, its name for messages, and its folder."""
    path = Path(name_or_path)
    if not path.suffix and str(name_or_path) in builtin_names():
        path = builtin_path(str(name_or_path))
    elif not path.is_file():
        raise ScenarioError(f"no scenario file '{name_or_path}' and no built-in scenario of "
                            f"that name (built-ins: {', '.join(builtin_names())})")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), str(path), path.resolve().parent
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None


def load_scenario(name_or_path: str | Path | Scenario, /, **overrides: Any) -> Scenario:
    """A validated scenario: a built-in name, a TOML file or a `Scenario`, with overrides.

    Keys are dotted paths of any depth, given as `**{"run.steps": 8}` or with double
    underscores (`run__steps=8`); a table value merges key by key
    (`forecast={"wind": {"sigma": 0}}`). Keys left out keep the file's value or the default.
    Raises `ScenarioError` with one line naming the first problem.
    """
    if isinstance(name_or_path, Scenario):
        data = name_or_path.model_dump(mode="python")
        source, base = f"scenario '{name_or_path.name}'", None
    else:
        data, source, base = _read(name_or_path)
    for dotted, value in overrides.items():
        _set(data, dotted, value, source)
    token = BASE_DIR.set(base)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_describe(exc)}") from None
    finally:
        BASE_DIR.reset(token)


def _scenario(scenario: str | Path | Scenario) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def run(scenario: str | Path | Scenario, scheme: str = "centralized",
        out: str | Path | None = None, *, profile: bool = False,
        progress: bool = False) -> Run:
    """Run one scheme; returns the results file as a `tsodso.results.Run`.

    `out` defaults to `<scenario>-<scheme>.h5` in the working directory (as `tsodso run`).
    `profile` stores the time spent in power flows and clearing; `progress` shows a bar.
    """
    from tsodso.coordination.schemes import scheme_class
    from tsodso.results import open_run
    from tsodso.runner import run as run_scheme

    sc = _scenario(scenario)
    scheme_class(scheme)  # ValueError naming the known schemes
    path = Path(out) if out is not None else Path(f"{sc.name}-{scheme}.h5")
    run_scheme(sc, scheme, path, profile=profile, progress=progress)
    return open_run(path)


def compare(scenario: str | Path | Scenario, schemes: str | Iterable[str] = "all",
            out: str | Path = "out") -> pd.DataFrame:
    """Run several schemes on the same scenario, seed and bids into the folder `out`
    (`<scheme>.h5` each and `summary.csv`); returns the KPI table of
    `tsodso.results.compare(out)` (one row per scheme; `.attrs["dir"]` is the folder).
    """
    from tsodso.comparison import compare as run_compare
    from tsodso.coordination.schemes import scheme_class, scheme_names
    from tsodso.results import compare as kpi_table

    sc = _scenario(scenario)
    names = list(scheme_names()) if schemes == "all" else (
        [schemes] if isinstance(schemes, str) else list(schemes))
    for name in names:
        scheme_class(name)
    folder = Path(out)
    run_compare(sc, names, folder)
    table = kpi_table(folder)
    table.attrs["dir"] = folder
    return table

