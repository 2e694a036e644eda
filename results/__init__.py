"""tsodso results: the HDF5 format (``format``, ``writer``), KPIs (``kpis``), the one reader
(``read``), the HTML report (``report``) and the analyst API (``api``), re-exported here:
``results.open(path)`` -> ``Run``, ``results.compare(dir)`` -> KPI DataFrame,
``results.export(dir_or_file, fmt)``.

The API is imported on first use (PEP 562), so that the simulation, which only needs
``results.writer``, does not pay for importing pandas and xarray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsodso.results.api import Run, compare, export, open_run

    open = open_run

#: Public name -> name in ``results.api``. ``open`` is named like the built-in on purpose
#: (as ``xarray.open_dataset``) and left out of ``__all__`` so that ``from results import *``
#: does not shadow the built-in.
_API = {"Run": "Run", "compare": "compare", "export": "export", "open": "open_run",
        "open_run": "open_run"}

__all__ = ["Run", "compare", "export", "open_run"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from tsodso.results import api

        return getattr(api, _API[name])
    raise AttributeError(f"module 'results' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
