"""The table of a study (one row per run: case parameters, day, seed, scheme, status, every
KPI) and the paired statistics read from it.

Schemes of the same case, day and seed saw the same forecasts and bids, so they are compared
draw by draw: the difference of each scheme's KPI to a reference scheme's in the same draw,
its mean and 5-95 % band over the draws, and how often each scheme was the cheapest. Scheme
names are data here (the table's ``scheme`` column, the study's ``reference``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Files of a study directory.
TABLE = "runs.parquet"
TABLE_CSV = "runs.csv"
STUDY_META = "study.json"
#: Columns that identify one run besides the case parameters.
DRAW_COLUMNS = ("day", "seed")
#: Social costs closer than this (EUR) count as a tie for "cheapest".
TIE_EUR = 0.5
#: Band of the draws shown with every mean.
BAND = (0.05, 0.95)


def is_study_dir(path: str | Path) -> bool:
    """True if ``path`` is a directory holding a study table."""
    p = Path(path)
    return p.is_dir() and (p / TABLE).is_file() and (p / STUDY_META).is_file()


def read_study(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The runs table and the study's description (``study.json``: name, scenario, schemes,
    reference, params) of a study directory."""
    p = Path(path)
    table = pd.read_parquet(p / TABLE)
    meta = json.loads((p / STUDY_META).read_text(encoding="utf-8"))
    return table, meta


def ok_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs that finished (status ``ok``)."""
    return table[table["status"] == "ok"]


def default_reference(table: pd.DataFrame, reference: str | None = None) -> str:
    """``reference`` if given, else the scheme with the lowest mean social cost."""
    if reference:
        return reference
    runs = ok_runs(table)
    if runs.empty:
        raise ValueError("no finished run")
    return str(runs.groupby("scheme")["social_cost_eur"].mean().idxmin())


def _draw_keys(params: Sequence[str]) -> list[str]:
    return [*params, *DRAW_COLUMNS]


def paired(table: pd.DataFrame, reference: str, params: Sequence[str] = (),
           kpi: str = "social_cost_eur") -> pd.DataFrame:
    """Per case (``params``) and scheme: the KPI's mean and band over the draws, the paired
    difference to ``reference`` in the same draw (mean, band, relative to the reference's
    mean in %), the share of draws in which the scheme was the cheapest (ties count for each
    scheme tied) and the number of draws. Draws where a scheme or the reference failed are
    left out of that scheme's differences."""
    runs = ok_runs(table)
    keys = _draw_keys(params)
    wide = runs.pivot_table(index=keys, columns="scheme", values=kpi, aggfunc="first")
    if reference not in wide.columns:
        raise ValueError(f"reference scheme {reference!r} has no finished run")
    lo, hi = BAND
    low = wide.min(axis=1)
    cheapest = wide.le(low + TIE_EUR, axis=0) & wide.notna()
    rows = []
    case_index = list(params)
    groups = (wide.groupby(level=case_index if len(case_index) > 1 else case_index[0],
                           sort=False) if case_index else [((), wide)])
    for case, block in groups:
        case = case if isinstance(case, tuple) else (case,)
        ref = block[reference]
        for scheme in wide.columns:
            values = block[scheme].dropna()
            if values.empty:
                continue
            diff = (block[scheme] - ref).dropna()
            rel = (block[scheme] / ref - 1.0).replace([np.inf, -np.inf], np.nan).dropna()
            wins = cheapest.loc[block.index, scheme]
            rows.append({**dict(zip(case_index, case, strict=True)), "scheme": scheme,
                         "n": int(values.size), "mean": values.mean(),
                         "p05": values.quantile(lo), "p95": values.quantile(hi),
                         "diff_mean": diff.mean(), "diff_p05": diff.quantile(lo),
                         "diff_p95": diff.quantile(hi),
                         "rel_mean_pct": 100.0 * rel.mean(),
                         "rel_p05_pct": 100.0 * rel.quantile(lo),
                         "rel_p95_pct": 100.0 * rel.quantile(hi),
                         "cheapest_share": float(wins[values.index].mean())})
    return pd.DataFrame(rows)


def ranks(table: pd.DataFrame, params: Sequence[str] = (),
          kpi: str = "social_cost_eur") -> pd.DataFrame:
    """The rank of every scheme in every draw (1 = cheapest; ties share the best rank), over
    the draws where every scheme finished."""
    runs = ok_runs(table)
    wide = runs.pivot_table(index=_draw_keys(params), columns="scheme", values=kpi,
                            aggfunc="first").dropna()
    # round to the tie tolerance so that equal costs share a rank
    return (wide / TIE_EUR).round().rank(axis=1, method="min").astype(int)


def ranking_stability(table: pd.DataFrame, params: Sequence[str] = (),
                      kpi: str = "social_cost_eur") -> tuple[pd.DataFrame, float, tuple]:
    """How stable the ranking is over the draws: per scheme the share of draws at each rank
    (columns 1..n) and the mean rank, the share of draws ranked exactly as the most frequent
    ranking (ties included), and that ranking ((scheme, rank) pairs, cheapest first)."""
    r = ranks(table, params, kpi)
    if r.empty:
        return pd.DataFrame(), float("nan"), ()
    n = r.shape[1]
    share = pd.DataFrame({k: (r == k).mean() for k in range(1, n + 1)})
    share["mean_rank"] = r.mean()
    share = share.sort_values("mean_rank")
    orders = r.apply(lambda row: tuple((str(k), int(v)) for k, v in
                                       row.sort_values(kind="stable").items()), axis=1)
    counts = orders.value_counts()
    return share, float(counts.iloc[0] / len(orders)), tuple(counts.index[0])


def format_order(order: Sequence[tuple[str, int]], labels: dict[str, str] | None = None) -> str:
    """A ranking of ``ranking_stability`` as text: 'A < B = C' (cheapest first)."""
    labels = labels or {}
    out = ""
    for i, (scheme, rank) in enumerate(order):
        if i:
            out += " = " if rank == order[i - 1][1] else " < "
        out += labels.get(scheme, scheme)
    return out


def format_paired(stats: pd.DataFrame, reference: str, labels: dict[str, str] | None = None,
                  params: Sequence[str] = ()) -> str:
    """A plain-text table of ``paired`` (one line per case and scheme)."""
    labels = labels or {}
    head = [*params, "scheme", "draws", "social EUR (mean)", "5-95 %",
            f"vs {labels.get(reference, reference)} (mean)", "5-95 %", "cheapest"]
    cells = [head]
    for _, s in stats.iterrows():
        cells.append([*(f"{s[p]}" for p in params), labels.get(s["scheme"], s["scheme"]),
                      f"{s['n']}", f"{s['mean']:,.0f}", f"{s['p05']:,.0f} .. {s['p95']:,.0f}",
                      f"{s['diff_mean']:+,.0f}",
                      f"{s['diff_p05']:+,.0f} .. {s['diff_p95']:+,.0f}",
                      f"{100 * s['cheapest_share']:.0f} %"])
    width = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i < len(params) + 1 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, width, strict=True)))
                     for row in cells)
