"""Names of the results file format shared by the writer and the reader: one definition each.

The scheme description attributes let a results file describe its own coordination scheme,
so that reports and tables never need to know scheme names. Files written before these
attributes existed are read with ``SCHEME_ATTR_DEFAULTS`` (label and short name fall back to
the scheme name).
"""

from __future__ import annotations

#: Value of the root attribute ``format``.
FORMAT_NAME = "tsodso-results"
#: Value of the root attribute ``format_version`` (incremented on incompatible changes).
FORMAT_VERSION = 2

#: Root attributes describing the scheme and the run, and their value when a file lacks them.
#: ``scheme_label`` and ``scheme_short`` default to the scheme name (filled in by the reader).
SCHEME_ATTR_DEFAULTS: dict[str, str | bool | int] = {
    "scheme_label": "",
    "scheme_short": "",
    "scheme_description": "",
    "scheme_counterfactual": False,
    "scheme_balances_areas": False,
    "scheme_order": 100,
    "scheme_operator": "",
    "builtin": "",
}
