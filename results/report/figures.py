"""Figures of the report: matplotlib (Agg, no pyplot state) rendered to PNG and embedded as
base64 data URLs with alt text and caption. matplotlib is imported on first use."""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from tsodso.results.format import SCHEME_ATTR_DEFAULTS
from tsodso.results.kpis import COST_KPI
from tsodso.results.report.data import TIE_EUR, ReportData, RunData
from tsodso.results.report.format import SOCIAL_PARTS, esc, eur, kind_label, label, short

_PALETTE = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#bcbd22", "#17becf")
_PART_COLORS = {"resource": "#1f77b4", "imbalance": "#ff7f0e", "overload_t": "#d62728",
                "overload_d": "#e377c2", "voltage_t": "#8c564b", "voltage_d": "#bcbd22"}
_KIND_COLORS = {"opposite_direction": "#d62728", "tso_causes_dso_violation": "#9467bd",
                "dso_causes_tso_imbalance": "#1f77b4", "interface_schedule_deviation": "#ff7f0e",
                "double_activation": "#8c564b"}
_NO_ORDER = int(SCHEME_ATTR_DEFAULTS["scheme_order"])


def color(runs: Sequence[RunData], run: RunData) -> str:
    """Line colour of a run: by the scheme's own order (the same in every report), else by
    its position in the report."""
    order = int(run.meta["scheme_order"])
    if 0 <= order < _NO_ORDER and run.key == run.scheme:
        return _PALETTE[order % len(_PALETTE)]
    return _PALETTE[runs.index(run) % len(_PALETTE)]


def new_figure(height: float = 3.4, width: float = 9.0) -> Any:
    """A matplotlib Figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(True, alpha=0.3)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def figure_html(fig: Any, fid: str, alt: str, caption: str) -> str:
    """The figure as an embedded PNG with caption (HTML) and alt text (plain, escaped here)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    data = buf.getvalue()
    w, h = struct.unpack(">II", data[16:24])  # PNG IHDR: width, height
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure id="fig-{fid}"><img src="data:image/png;base64,{b64}" width="{w}" '
            f'height="{h}" alt="{esc(alt)}"><figcaption>{caption}</figcaption></figure>')


def bar_costs(runs: Sequence[RunData]) -> str:
    """Stacked horizontal bars: social cost per scheme split into the resource cost of the
    flexibility and the value of what stays unserved (the caller leaves out runs that would
    flatten the others)."""
    fig = new_figure(height=0.9 + 0.45 * len(runs))
    ax = fig.add_subplot()
    y = np.arange(len(runs))
    pos = np.zeros(len(runs))
    neg = np.zeros(len(runs))
    for key, name in SOCIAL_PARTS:
        vals = np.array([r.kpis[COST_KPI[key]] for r in runs])
        if not np.any(np.abs(vals) >= TIE_EUR):
            continue
        left = np.where(vals >= 0, pos, neg)
        ax.barh(y, vals, left=left, color=_PART_COLORS[key], label=name, height=0.6)
        pos += np.maximum(vals, 0)
        neg += np.minimum(vals, 0)
    ax.set_yticks(y, [short(r) for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("cost over the period (EUR)")
    ax.xaxis.set_major_formatter(_thousands())
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize="small", ncols=3, frameon=False)
    alt = "Horizontal stacked bar chart of the social cost of each scheme, split into the " \
        "resource cost of flexibility and the value of what stays unserved. " + \
        "; ".join(f"{label(r)}: {eur(r.kpis['social_cost_eur'])} EUR" for r in runs) + "."
    return figure_html(fig, "costs-split", alt,
                       "Social cost per scheme: the resource cost of the activated flexibility "
                       "(at bid prices) and the value of the imbalance, overloads and voltage "
                       "deviations left after the market (EUR). Payments between parties are "
                       "not part of it. Numbers in the tables above.")


def line_times(runs: Sequence[RunData], series: dict[str, np.ndarray], ylabel: str, fid: str,
               alt: str, caption: str, cumulative: bool = False, hline: float | None = None,
               ) -> str:
    """One line per run over time (steps, or cumulative sums)."""
    fig = new_figure()
    ax = fig.add_subplot()
    styles = ("-", "--", "-.", ":")
    for i, r in enumerate(runs):
        y = series[r.key]
        if cumulative:
            y = np.cumsum(y)
        ax.plot(r.times, y, color=color(runs, r), label=short(r), lw=1.6,
                ls=styles[i % len(styles)], drawstyle="steps-post" if not cumulative else None)
    if hline is not None:
        ax.axhline(hline, color="black", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(_thousands() if cumulative else ax.yaxis.get_major_formatter())
    _time_axis(ax)
    fig.legend(loc="outside right upper", fontsize="small", frameon=False)
    return figure_html(fig, fid, alt, caption)


def conflict_timeline(runs: Sequence[RunData]) -> str:
    """One row per run, one marker per conflict record, coloured by kind, sized by MW."""
    fig = new_figure(height=1.0 + 0.5 * len(runs))
    ax = fig.add_subplot()
    kinds_seen: dict[str, None] = {}
    peak = max(float(np.max(np.abs(r.con["mw"]), initial=0.0)) for r in runs) or 1.0
    for i, r in enumerate(runs):
        kinds = r.con["kind"].astype(str)
        for k in dict.fromkeys(kinds):
            m = kinds == k
            kinds_seen[k] = None
            t = [r.times[s] for s in r.con["step"][m] if s < r.n]
            size = 20 + 180 * np.abs(r.con["mw"][m].astype(float)) / peak
            ax.scatter(t, np.full(len(t), i), s=size, color=_KIND_COLORS.get(k, "#333333"),
                       alpha=0.6, edgecolors="none", label=kind_label(k))
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    fig.legend(uniq.values(), uniq.keys(), loc="outside lower center", fontsize="small",
               ncols=3, frameon=False)
    ax.set_yticks(range(len(runs)), [short(r) for r in runs])
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.set_xlim(runs[0].times[0], runs[0].times[-1] + (runs[0].times[-1] - runs[0].times[0]) / 50
                if runs[0].n > 1 else None)
    _time_axis(ax)
    total = sum(len(r.con["kind"]) for r in runs)
    alt = (f"Timeline of {total:,} recorded conflicts, one row per scheme, coloured by kind "
           f"({', '.join(kind_label(k) for k in kinds_seen)}); marker size shows MW.")
    return figure_html(fig, "conflict-timeline", alt,
                       "When conflicts happened: one row per scheme, one marker per conflict "
                       "record, coloured by kind; larger markers mean more MW.")


def _box_stats(values: np.ndarray, name: str) -> dict:
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {"label": name, "whislo": q[0], "q1": q[1], "med": q[2], "q3": q[3], "whishi": q[4],
            "fliers": []}


def boxes(rep: ReportData, attr: str, fid: str, unit: str, what: str) -> str:
    """Box plots of sampled bus voltages (``attr="vm"``) or branch loadings per run, D and T
    side by side, with the limits as dashed lines."""
    runs = rep.runs
    fig = new_figure(height=0.9 + 0.42 * len(runs), width=9.6)
    axes = fig.subplots(1, 2, sharey=True)
    parts = []
    for ax, level, title in zip(axes, ("D", "T"), ("distribution grids (D)",
                                                    "transmission grid (T)"), strict=True):
        stats, ypos, colors = [], [], []
        for i, r in enumerate(runs):
            st = r.levels.get(level)
            if st is None or getattr(st, attr).size == 0:
                continue
            values = getattr(st, attr)
            stats.append(_box_stats(values, short(r)))
            ypos.append(i)
            colors.append(color(runs, r))
            d = 3 if attr == "vm" else 1
            parts.append(f"{label(r)} {level}: median {stats[-1]['med']:.{d}f} {unit}, "
                         f"range {stats[-1]['whislo']:.{d}f}–{stats[-1]['whishi']:.{d}f} {unit}")
        if stats:
            bp = ax.bxp(stats, positions=ypos, orientation="horizontal", widths=0.55,
                        patch_artist=True, showfliers=False)
            for patch, c in zip(bp["boxes"], colors, strict=True):
                patch.set_facecolor(c)
                patch.set_alpha(0.55)
            for med in bp["medians"]:
                med.set_color("black")
        limits = set().union(*(r.levels[level].limits for r in runs if level in r.levels))
        for lim in limits:
            for x in ((lim[0], lim[1]) if attr == "vm" else (lim[2],)):
                ax.axvline(x, color="#d62728", ls="--", lw=1)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(f"{what} ({unit})")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(runs)), [short(r) for r in runs])
    axes[0].set_ylim(len(runs) - 0.5, -0.5)
    alt = (f"Box plots of {what} per scheme, distribution and transmission grids side by side. "
           + "; ".join(parts) + ".")
    limit_text = ("the voltage band" if attr == "vm" else "the loading limit")
    stride = max(r.sample_stride for r in runs)
    stride_note = f" (one step in {stride})" if stride > 1 else ""
    return figure_html(fig, fid, alt,
                       f"Distribution of {what} over all {'buses' if attr == 'vm' else 'branches'}"
                       f" and steps{stride_note}: the box holds the middle half of the "
                       f"values, the black line is the median, whiskers reach the lowest and "
                       f"highest value; red dashed lines mark {limit_text}.")
