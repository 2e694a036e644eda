"""Assumptions part of the report: the stored scenario as tables, the command that reproduces
the runs, and the software versions. The built-in scenario name comes from the files
(``builtin``): the results layer does not load scenarios."""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path

from tsodso.results.report.data import RunData
from tsodso.results.report.format import esc, table

#: Packages whose versions are shown (installed where the report is built).
PACKAGES = ("tsodso", "pandapower", "mosaik", "highspy", "simbench", "numpy", "h5py",
            "matplotlib")

_UNITS = (("_eur_per_mwh", "EUR/MWh"), ("_eur_per_bus_h", "EUR per bus-hour"),
          ("_pu", "pu"), ("_percent", "%"), ("_mw", "MW"), ("_s", "s"))
_EXPLAIN = {
    "forecast": "Forecast-error model per asset kind: error standard deviation as a fraction of "
                "the asset's rating (sigma), autocorrelation from one step to the next (rho), "
                "and the share of the variance common to all assets of the kind (common).",
    "flexibility": "Flexibility assumptions per asset kind: share of the capability offered to "
                   "the markets and the offer prices (EUR/MWh) for up and down activation. "
                   "balancing: the TSO's offer ladder at the link to the rest of the system "
                   "(blocks per direction, MW per block, first prices, price step per block).",
    "limits": "Grid limits used by the markets and for counting violations.",
    "penalties": "Penalties that price what stays unsolved.",
    "market": "Market rules: pricing rule and scheme options.",
    "coupling": "Convergence of the transmission–distribution power-flow loop in a step.",
}


def unit(key: str) -> str:
    """Unit of a scenario setting, from its name."""
    if key.startswith("price") or key == "price_step":
        return "EUR/MWh"
    if key == "block_mw":
        return "MW"
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def val(v: object) -> str:
    """HTML: a scenario value as shown in the settings tables."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return esc(f"{v:,.6g}")
    if isinstance(v, int):
        return esc(f"{v:,}")
    if isinstance(v, datetime):
        return esc(v.isoformat(sep=" "))
    return esc(v)


def toml_tables(data: dict) -> str:
    """HTML: one block of tables per scenario section, with an explanation."""
    parts = []
    for sec, body in data.items():
        if not isinstance(body, dict):
            continue
        intro = f"<p>{esc(_EXPLAIN[sec])}</p>" if sec in _EXPLAIN else ""
        nested = {k: v for k, v in body.items() if isinstance(v, dict)}
        flat = {k: v for k, v in body.items() if not isinstance(v, dict)}
        html_ = f"<h4>[{esc(sec)}]</h4>{intro}"
        if flat:
            html_ += table(["Setting", "Value", "Unit"],
                           [[f"<code>{esc(k)}</code>", val(v), esc(unit(k))]
                            for k, v in flat.items()], numeric_from=1)
        groups: dict[tuple, list] = {}
        for k, v in nested.items():
            groups.setdefault(tuple(v), []).append(k)
        for cols, keys in groups.items():
            headers = ["", *(f"<code>{esc(c)}</code>"
                             + (f" ({esc(unit(c))})" if unit(c) else "") for c in cols)]
            html_ += table(headers, [[f"<code>{esc(k)}</code>",
                                      *(val(nested[k][c]) for c in cols)] for k in keys])
        parts.append(html_)
    return "\n".join(parts)


def versions() -> list[tuple[str, str]]:
    """(package, installed version) of ``PACKAGES``."""
    out = []
    for pkg in PACKAGES:
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            out.append((pkg, "not installed"))
    return out


def toml_filename(name: str) -> str:
    """A safe file name for the scenario download."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    return (safe[:60] or "scenario") + ".toml"


def reproduce(runs: Sequence[RunData], source: Path, toml_text: str) -> tuple[str, str, str]:
    """(command, scenario argument, TOML file name) that reproduce the runs. The scenario
    argument is the built-in scenario the run file names (``builtin``), else the file."""
    first = runs[0]
    steps, seed = int(first.meta["n_steps"]), int(first.meta["seed"])
    try:
        name = str(tomllib.loads(toml_text).get("name", "scenario"))
    except tomllib.TOMLDecodeError:
        name = "scenario"
    fname = toml_filename(name)
    arg = str(first.meta["builtin"]) or fname
    if source.is_file():
        cmd = ["tsodso", "run", arg, "--scheme", first.scheme, "--steps", str(steps),
               "--seed", str(seed), "--out", str(source)]
    else:
        cmd = ["tsodso", "compare", arg, "--schemes", ",".join(r.scheme for r in runs),
               "--steps", str(steps), "--seed", str(seed), "--out", str(source)]
    return shlex.join(cmd), arg, fname
