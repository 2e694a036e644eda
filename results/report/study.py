"""The report of a study directory (``tsodso study``, ``tsodso compare --seeds``): costs per
scheme with their spread over the draws, paired differences to the study's reference scheme,
how stable the ranking is, and for each swept parameter each scheme's social cost relative to
the reference against the parameter. One self-contained HTML page like the run report (same
styles, figures embedded as PNG); every number is read from ``runs.parquet``.

Sections are functions of ``StudyData`` listed in ``STUDY_SECTIONS``, as in ``sections``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tsodso.results.report.figures import _PALETTE, figure_html, new_figure
from tsodso.results.report.format import esc, eur, num, pct, table
from tsodso.results.report.page import built_stamp, numbered_sections, page_head
from tsodso.results.study import (
    BAND,
    default_reference,
    format_order,
    ok_runs,
    paired,
    ranking_stability,
    read_study,
)

#: Failed runs listed by name at most.
MAX_FAILED_SHOWN = 30


@dataclass
class StudyData:
    """The runs table of a study and what its sections share."""

    table: pd.DataFrame
    meta: dict[str, Any]
    source: Path
    reference: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    colors: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # name -> matplotlib Figure

    @property
    def params(self) -> list[str]:
        return list(self.meta.get("params", []))

    def label(self, scheme: str) -> str:
        return self.labels.get(scheme, scheme)


def study_data(source: Path) -> StudyData:
    table, meta = read_study(source)
    data = StudyData(table, meta, source)
    ok = ok_runs(table)
    if ok.empty:
        raise ValueError("no finished run in the study")
    data.reference = default_reference(table, meta.get("reference"))
    first = ok.drop_duplicates("scheme").sort_values(["scheme_order", "scheme"])
    data.labels = dict(zip(first["scheme"], first["scheme_label"].astype(str), strict=True))
    data.colors = {s: _PALETTE[int(o) % len(_PALETTE)] for s, o in
                   zip(first["scheme"], first["scheme_order"], strict=True)}
    return data


def _schemes(data: StudyData) -> list[str]:
    """Schemes in their own order (as the run report)."""
    return list(data.labels)


def _levels(values: pd.Series) -> list[Any]:
    """The distinct values of a parameter, numbers in order and before text."""
    return sorted(set(values.dropna()), key=lambda v: (isinstance(v, str), v))


def _band(lo: float, hi: float, fmt: Callable[[float], str] = eur) -> str:
    return f"{fmt(lo)} … {fmt(hi)}"


# -- sections ----------------------------------------------------------------------------------


def overview(data: StudyData) -> str:
    t, meta = data.table, data.meta
    ok = ok_runs(t)
    days = sorted({pd.Timestamp(d).strftime("%Y-%m-%d %H:%M") for d in t["day"]})
    rows = [("Base scenario", f"<code>{esc(meta.get('scenario', ''))}</code>"),
            ("Schemes", esc(", ".join(data.label(s) for s in _schemes(data)))),
            ("Reference for paired differences", esc(data.label(data.reference))),
            ("Seeds", esc(", ".join(str(s) for s in meta.get("seeds", [])))),
            ("Days (start)", esc(", ".join(days))),
            ("Swept parameters", esc(", ".join(
                f"{p} = {', '.join(str(v) for v in _levels(t[p]))}" for p in data.params)
                or "–")),
            ("Fixed overrides", esc(", ".join(f"{k} = {v}" for k, v in
                                               meta.get("fixed", {}).items()) or "–")),
            ("Runs", f"{len(t):,} ({len(ok):,} finished, {len(t) - len(ok):,} failed)")]
    html = table(["", ""], rows, tid="study-facts", numeric_from=9)
    if meta.get("description"):
        html = f"<p>{esc(meta['description'])}</p>\n" + html
    failed = t[t["status"] != "ok"]
    if not failed.empty:
        shown = failed.head(MAX_FAILED_SHOWN)
        html += table(["Run", "Reason"], [(f"<code>{esc(r.file)}</code>", esc(r.error))
                                          for r in shown.itertuples()],
                      tid="failed-runs", caption=f"Failed runs ({len(failed)}; "
                      f"first {len(shown)} shown). They are left out of every statistic.",
                      numeric_from=9)
    html += ("<p>Schemes of the same case, day and seed saw the same forecasts and bids; every "
             "difference below is taken draw by draw (paired) and summarised by its mean and "
             f"its {int(BAND[0] * 100)}–{int(BAND[1] * 100)} % band over the draws.</p>")
    return html


def costs(data: StudyData) -> str:
    stats = paired(data.table, data.reference, data.params)
    lo, hi = int(BAND[0] * 100), int(BAND[1] * 100)
    ref = esc(data.label(data.reference))
    out = [_cost_figure(data, stats)]
    groups = stats.groupby(data.params, sort=False) if data.params else [((), stats)]
    for case, block in groups:
        case = case if isinstance(case, tuple) else (case,)
        title = ", ".join(f"{p} = {v}" for p, v in zip(data.params, case, strict=True))
        rows = []
        for s in _schemes(data):
            r = block[block["scheme"] == s]
            if r.empty:
                continue
            r = r.iloc[0]
            rows.append((esc(data.label(s)), str(int(r["n"])), eur(r["mean"]),
                         _band(r["p05"], r["p95"]), eur(r["diff_mean"]),
                         _band(r["diff_p05"], r["diff_p95"]), pct(r["rel_mean_pct"]),
                         pct(100 * r["cheapest_share"])))
        out.append(table(["Scheme", "Draws", "Social cost, mean (EUR)", f"{lo}–{hi} %",
                          f"Paired difference to {ref}, mean (EUR)", f"{lo}–{hi} %",
                          f"Relative to {ref}", "Cheapest in"],
                         rows, tid=f"costs-{len(out)}",
                         caption=esc(title) if title else "All draws (days × seeds)"))
    return "\n".join(out)


def _relative_cost(data: StudyData) -> pd.DataFrame:
    """Each scheme's social cost relative to the reference in the same draw (%), one row per
    case, day and seed."""
    runs = ok_runs(data.table)
    keys = [*data.params, "day", "seed"]
    wide = runs.pivot_table(index=keys, columns="scheme", values="social_cost_eur",
                            aggfunc="first")
    rel = 100 * (wide.div(wide[data.reference], axis=0) - 1)
    return rel.replace([np.inf, -np.inf], np.nan)


def _cost_figure(data: StudyData, stats: pd.DataFrame) -> str:
    """Social cost relative to the reference, paired by draw, pooled over the cases: mean and
    band per scheme."""
    rel = _relative_cost(data)
    schemes = [s for s in _schemes(data) if s in rel.columns and rel[s].notna().any()]
    fig = new_figure(height=0.9 + 0.45 * len(schemes))
    ax = fig.add_subplot()
    for i, s in enumerate(schemes):
        v = rel[s].dropna()
        ax.errorbar(v.mean(), i, xerr=[[v.mean() - v.quantile(BAND[0])],
                                       [v.quantile(BAND[1]) - v.mean()]],
                    fmt="o", color=data.colors.get(s), capsize=4)
    ax.set_yticks(range(len(schemes)), [data.label(s) for s in schemes])
    ax.set_ylim(len(schemes) - 0.4, -0.6)  # first scheme on top
    ax.axvline(0, color="#555", lw=0.8)
    _at_least(ax, 1.0, axis="x")
    ax.set_xlabel(f"social cost relative to {data.label(data.reference)} (%), paired by draw")
    ax.grid(True, axis="x", alpha=0.3)
    data.figures["costs"] = fig
    n = len(rel)
    return figure_html(fig, "study-costs", "Social cost of each scheme relative to the "
                       "reference, mean and band over the draws",
                       f"Mean (dot) and {int(BAND[0] * 100)}–{int(BAND[1] * 100)} % band "
                       f"(bar) over {n} draws (cases × days × seeds) of each scheme's social "
                       f"cost relative to {esc(data.label(data.reference))} in the same "
                       "draw.")


def ranking(data: StudyData) -> str:
    share, stable, order = ranking_stability(data.table, data.params)
    if share.empty:
        return "<p>No draw in which every scheme finished.</p>"
    ranks = [c for c in share.columns if c != "mean_rank"]
    rows = [(esc(data.label(s)), num(share.loc[s, "mean_rank"], 2),
             *(pct(100 * share.loc[s, k]) for k in ranks)) for s in share.index]
    n = len(ok_runs(data.table).groupby([*data.params, "day", "seed"]))
    text = (f"<p>The most frequent ranking ({esc(format_order(order, data.labels))}, "
            f"cheapest first) holds in <strong>{pct(100 * stable)}</strong> of the draws in "
            "which every scheme finished. A scheme whose draws spread over several ranks has "
            "no stable place: its cost difference to its neighbours is smaller than the "
            f"spread over days and forecast draws ({n} draws in all).</p>")
    return text + table(["Scheme", "Mean rank", *(f"Rank {k}" for k in ranks)], rows,
                        tid="ranking-stability",
                        caption="Share of draws at each rank (1 = cheapest; equal costs share "
                                "the better rank)")


def _at_least(ax: Any, span: float, axis: str = "y") -> None:
    """Show at least ``span`` (percentage points) around the data, so that rounding noise
    (1e-13 %) is not drawn as a difference."""
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if hi - lo < span:
        mid = (hi + lo) / 2
        (ax.set_ylim if axis == "y" else ax.set_xlim)(mid - span / 2, mid + span / 2)


def sweeps(data: StudyData) -> str:
    if not data.params:
        return "<p>This study sweeps no parameter.</p>"
    out = []
    for p in data.params:
        fig = sweep_figure(data, p)
        data.figures[f"sweep-{p}"] = fig
        others = [q for q in data.params if q != p]
        pooled = (f" Draws of every value of {esc(', '.join(others))} are pooled."
                  if others else "")
        out.append(figure_html(
            fig, f"sweep-{p}", f"Social cost relative to the reference against {p}",
            f"Each scheme's social cost relative to {esc(data.label(data.reference))} in the "
            f"same draw, against <code>{esc(p)}</code>: mean (line) and "
            f"{int(BAND[0] * 100)}–{int(BAND[1] * 100)} % band (shaded) over the "
            f"draws.{pooled}"))
    return "\n".join(out)


def sweep_figure(data: StudyData, param: str) -> Any:
    """Social cost relative to the reference (%, paired by draw) against one swept
    parameter: one line per scheme with its band."""
    rel = _relative_cost(data)
    values = rel.index.get_level_values(param)
    levels = _levels(pd.Series(values))
    numeric = all(isinstance(v, int | float | np.number) and not isinstance(v, bool)
                  for v in levels)
    x = np.array(levels, dtype=float) if numeric else np.arange(len(levels))
    fig = new_figure(height=3.6)
    ax = fig.add_subplot()
    for s in _schemes(data):
        if s not in rel.columns:
            continue
        grouped = [rel[s][values == v].dropna() for v in levels]
        mean = np.array([g.mean() if len(g) else np.nan for g in grouped])
        lo = np.array([g.quantile(BAND[0]) if len(g) else np.nan for g in grouped])
        hi = np.array([g.quantile(BAND[1]) if len(g) else np.nan for g in grouped])
        color = data.colors.get(s)
        ax.plot(x, mean, marker="o", color=color, label=data.label(s))
        ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
    ax.axhline(0, color="#555", lw=0.8)
    _at_least(ax, 1.0)
    if numeric and len(x) > 2 and x.min() > 0 and x.max() / x.min() >= 50:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(x, [str(v) for v in levels])
    ax.set_xlabel(param)
    ax.set_ylabel(f"social cost vs {data.label(data.reference)} (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def reproduce(data: StudyData) -> str:
    src = data.meta.get("source", "")
    cmd = (f"tsodso study {src} --out {data.source}" if str(src).endswith(".toml")
           else f"(study built by {src})")
    return (f"<p>Every run has its own results file under <code>{esc(data.source)}</code> "
            "(<code>&lt;case&gt;/&lt;day&gt;/seed-&lt;seed&gt;/&lt;scheme&gt;.h5</code>), which "
            "<code>tsodso report</code> shows run by run. The table of all runs is "
            "<code>runs.parquet</code> (also <code>runs.csv</code>). Re-running the same "
            "command skips finished runs.</p>"
            f"<pre>{esc(cmd)}</pre>")


Section = tuple[str, str, Callable[[StudyData], str]]
STUDY_SECTIONS: list[Section] = [
    ("study", "The study", overview),
    ("costs", "Costs per scheme with their spread", costs),
    ("ranking", "How stable the ranking is", ranking),
    ("sweeps", "Swept parameters", sweeps),
    ("reproduce", "Files and reproduction", reproduce),
]


def render_study(data: StudyData) -> str:
    bodies = [(sid, heading, build(data)) for sid, heading, build in STUDY_SECTIONS]
    nav, body = numbered_sections(bodies)
    name = esc(data.meta.get("name", data.source.name))
    built, version = built_stamp()
    n = len(data.table)
    return f"""{page_head(f"TSO–DSO coordination study: {data.meta.get('name', data.source.name)}")}
<body>
<header>
<h1>TSO–DSO coordination study: {name}</h1>
<p class="lede">{n:,} runs of <strong>{esc(data.meta.get('scenario', ''))}</strong> ·
 {len(_schemes(data))} schemes · costs in EUR over each run's period, compared paired by
 case, day and seed.</p>
<nav aria-label="Sections"><ol>{nav}</ol></nav>
</header>
<main>
{body}
</main>
<footer>Built {esc(built)} by tsodso {version} from <code>{esc(data.source.name)}</code>.
 Every number on this page is read from its runs table.</footer>
</body>
</html>
"""


def build_study_report(source: Path, out: Path | None = None,
                       figures: Path | None = None) -> Path:
    """Write the HTML report of a study directory (default ``DIR/report.html``); with
    ``figures``, also each figure as ``<name>.png`` in that folder. Returns the page."""
    data = study_data(Path(source))
    page = render_study(data)
    out = Path(out) if out is not None else Path(source) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        for name, fig in data.figures.items():
            fig.savefig(figures / f"{name}.png", dpi=110)
    return out
