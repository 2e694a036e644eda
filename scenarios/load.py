"""Finding, reading and validating scenario files; one-line errors for users."""

from __future__ import annotations

import tomllib
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError
from tsodso.scenarios.schema import BASE_DIR, Scenario


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
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{key}'"
    if kind == "missing":
        return f"missing key '{key}'"
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"key '{key}': {msg}{shown}"


def parse(text: str, source: str, overrides: dict[str, Any] | None = None) -> Scenario:
    """Validate scenario TOML text; `overrides` maps 'section.key' to a value."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ScenarioError(f"{source}: key '{section}' must be a table")
        data[section][key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_describe(exc)}") from None


def load(name_or_path: str, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load a built-in scenario by name or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix and name_or_path in builtin_names():
        path = builtin_path(name_or_path)
    elif not path.exists():
        known = ", ".join(builtin_names())
        raise ScenarioError(
            f"no scenario file '{name_or_path}' and no built-in scenario of that name "
            f"(built-ins: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
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
