"""tsodso: TSO-DSO coordination co-simulator.

The Python API (see README and examples/): ``load_scenario``, ``run``, ``compare`` and
``run_study``, imported
on first use (PEP 562) so that ``import tsodso`` and the command line stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tsodso.api import ScenarioError, compare, load_scenario, run
    from tsodso.study import run_study

_API = ("load_scenario", "run", "compare", "ScenarioError")

__all__ = ["ScenarioError", "__version__", "compare", "load_scenario", "run", "run_study"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from tsodso import api

        return getattr(api, name)
    if name == "run_study":
        from tsodso.study import run_study

        return run_study
    raise AttributeError(f"module 'tsodso' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "run_study"])
