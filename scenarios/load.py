"""Finding, reading and validating scenario files; one-line errors for users."""

from __future__ import annotations

import os
import stat
import tomllib
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError
from tsodso.scenarios.schema import BASE_DIR, Scenario, cut

#: Largest scenario file read (bytes); real scenarios are a few kB.
MAX_SCENARIO_BYTES = 1_000_000


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message is one line naming the problem."""


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with the package."""
    folder = resources.files("tsodso.scenarios") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("tsodso.scenarios") / "builtin" / f"{name}.toml"))


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if len(key) > 80:
        key = f"{key[:60]}... ({len(key)} chars)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{key}'"
    if kind == "missing":
        return f"missing key '{key}'"
    msg = first["msg"].removeprefix("Value error, ")
    if first["loc"] == () or kind == "value_error":
        where = f"key '{key}': " if first["loc"] else ""
        return f"{where}{msg}"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {cut(got)})"
    return f"key '{key}': {msg}{shown}"


def parse(text: str, source: str, overrides: dict[str, Any] | None = None) -> Scenario:
    """Validate scenario TOML text; `overrides` maps 'section.key' to a value."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: not a usable scenario: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ScenarioError(f"{source}: not a usable scenario: {cut(str(exc), 120)}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".")
        if dotted == "run.start" and isinstance(value, str):  # from code: ISO text is fine
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise ScenarioError(f"{source}: run.start: not an ISO date-time "
                                    f"({cut(value)})") from None
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ScenarioError(f"{source}: key '{section}' must be a table")
        data[section][key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_describe(exc)}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise ScenarioError(f"{source}: not a usable scenario: {type(exc).__name__}") from None


def read_text(path: Path, limit: int = MAX_SCENARIO_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes; ScenarioError otherwise.

    Opened non-blocking and checked with fstat, so a FIFO, a device or a directory is refused
    without ever waiting on it or reading it without end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise ScenarioError(f"{path}: file too large ({info.st_size} bytes; limit {limit})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise ScenarioError(f"{path}: file too large (limit {limit} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None


def load(name_or_path: str, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load a built-in scenario by name or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix and name_or_path in builtin_names():
        path = builtin_path(name_or_path)
    elif not path.exists():
        known = ", ".join(builtin_names())
        raise ScenarioError(
            f"no scenario file {cut(name_or_path)} and no built-in scenario of that name "
            f"(built-ins: {known})")
    text = read_text(path)
    token = BASE_DIR.set(path.resolve().parent)  # grid.file etc. relative to the file
    try:
        return parse(text, str(path), overrides)
    finally:
        BASE_DIR.reset(token)


def to_toml(scenario: Scenario) -> str:
    """The fully resolved scenario (defaults filled in) as TOML text."""
    data = scenario.model_dump(mode="python")

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, datetime):
            return obj
        return obj

    return tomli_w.dumps(clean(data))


def builtin_match(scenario: Scenario) -> str:
    """The built-in scenario that, with this scenario's steps and seed, is this scenario ("" if
    none): results files store it so that reports can name a one-line reproduction."""
    if scenario.name not in builtin_names():
        return ""
    try:
        same = load(scenario.name, {"run.steps": scenario.run.steps,
                                    "run.seed": scenario.run.seed}) == scenario
    except ScenarioError:
        return ""
    return scenario.name if same else ""
