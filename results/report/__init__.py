"""Regulator-facing HTML report of a `tsodso compare` directory (or of a single run file).

The report is one self-contained HTML file: plots are PNG images embedded as base64 data URLs,
styles are inline, there is no script and no external URL, so it opens offline and can be
forwarded as it is. Every number comes from the results files (read through the one reader,
``results.read``); every text that comes from a file (scenario name and description, scheme
names and descriptions, TOML, grid and resource names) is HTML-escaped. What a scheme is
called and how it is described comes from its file, so the report knows no scheme names.

Modules: ``data`` (files -> ``RunData``/``ReportData``), ``format`` (numbers, escaping,
tables), ``figures``, ``findings``, ``assumptions`` (scenario tables, reproduce command),
``sections`` (one function per section and ``SECTIONS``), ``page`` (the HTML page);
``study`` is the report of a study directory (``runs.parquet``: spread over draws, paired
differences, ranking stability, sweeps), with its own ``STUDY_SECTIONS``.
"""

from __future__ import annotations

from tsodso.results.report.page import build_report
from tsodso.results.report.sections import SECTIONS

__all__ = ["SECTIONS", "build_report"]
