"""Regulator-facing HTML report of a `tsodso compare` directory (or of a single run file).

The report is one self-contained HTML file: plots are PNG images embedded as base64 data URLs,
styles are inline, there is no script and no external URL, so it opens offline and can be
forwarded as it is. Every number comes from the results files (read with h5py through
``results.read``); every text that comes from a file (scenario name, description, TOML, grid
and resource names) is HTML-escaped. Sections (stable ids): ``summary``, ``costs``,
``cross-level``, ``conflicts``, ``grid``, ``assumptions``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import shlex
import struct
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
from tsodso.results.kpis import KPI_UNITS, compute_kpis
from tsodso.results.read import open_results, read_meta

#: Section id -> heading, in page order.
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "costs": "Costs: who pays",
    "cross-level": "Flexibility bought across the TSO–DSO boundary",
    "conflicts": "Conflicts between TSO and DSO actions",
    "grid": "Grid outcomes",
    "assumptions": "Assumptions and method",
}

#: Known schemes in their usual order: CLI name -> plain-language name.
SCHEME_LABELS: dict[str, str] = {
    "none": "No coordination (counterfactual)",
    "centralized": "Centralized market",
    "local": "Local markets",
    "shared_balancing": "Shared balancing responsibility",
    "common": "Common TSO–DSO market",
    "integrated": "Integrated flexibility market",
}

#: Short names for table columns and rows.
SCHEME_SHORT: dict[str, str] = {
    "none": "No coordination",
    "centralized": "Centralized",
    "local": "Local",
    "shared_balancing": "Shared balancing",
    "common": "Common",
    "integrated": "Integrated",
}

#: Scheme definitions as implemented (see docs/schemes.md), in plain language.
SCHEME_TEXT: dict[str, str] = {
    "none": "Nobody buys flexibility. Forecast errors stay as unresolved imbalance and grid "
            "problems stay as violations; both are priced with the scenario's penalties. It is "
            "the reference the other schemes are measured against.",
    "centralized": "The TSO runs one market and buys from transmission- and "
                   "distribution-connected resources alike, respecting only the transmission "
                   "grid's limits (DC power flow). Distribution grids are not checked unless DSO "
                   "prequalification is switched on, which caps distribution offers to what "
                   "the distribution grids can take.",
    "local": "Each DSO first buys what its own grid needs in a local market (its "
             "distribution resources, its grid limits). Offers the DSOs did not use are passed "
             "to the TSO's market, capped to what the distribution grid can carry without new "
             "violations; the TSO then buys to balance the system, including the balance the "
             "DSOs' purchases moved.",
    "shared_balancing": "Each DSO must keep its interface to the transmission grid on the "
                        "agreed schedule (the forecast exchange): it balances the forecast "
                        "errors in its own area and solves its congestion with its own "
                        "resources. The TSO balances the transmission-connected assets with "
                        "transmission resources. Both markets clear at the same time, "
                        "independently.",
    "common": "One joint market serves the TSO and all DSOs with no priority, with the "
              "transmission and all distribution grid limits at once, minimising total cost. "
              "A distribution-connected activation counts as the DSO's purchase when it "
              "relieves a violation that existed in its grid before the market; all others "
              "are the TSO's.",
    "integrated": "The common market run by an independent operator in which balance "
                  "responsible parties (BRPs) also trade: each BRP may buy flexibility "
                  "against its own portfolio imbalance instead of paying the imbalance price; "
                  "the TSO buys the balancing that is left and the DSOs their grid needs.",
}

#: Conflict kind -> short name.
CONFLICT_LABELS: dict[str, str] = {
    "opposite_direction": "Opposite directions",
    "tso_causes_dso_violation": "TSO activation causes DSO violation",
    "dso_causes_tso_imbalance": "DSO activation causes TSO imbalance",
    "interface_schedule_deviation": "Interface schedule deviation",
    "double_activation": "Double activation",
}

#: Conflict kind -> plain-language meaning.
CONFLICT_TEXT: dict[str, str] = {
    "opposite_direction": "TSO and DSO activated resources in the same distribution grid in "
                          "opposite directions (volume = the smaller of the two).",
    "tso_causes_dso_violation": "A TSO activation of distribution-connected resources created "
                                "a voltage or loading violation in that distribution grid.",
    "dso_causes_tso_imbalance": "A DSO activation shifted the interface exchange, which the "
                                "TSO then has to balance.",
    "interface_schedule_deviation": "Shared balancing: the interface left its agreed schedule "
                                    "by more than the tolerance.",
    "double_activation": "One resource was sold beyond what it offered, or both up and down "
                         "to different buyers.",
}

COST_PARTS: tuple[tuple[str, str], ...] = (
    ("tso", "TSO"), ("dso", "DSOs"), ("brp", "BRPs"), ("imbalance", "Imbalance penalties"),
    ("violation", "Violation penalties"))

#: Distributions of voltages and loadings use at most this many steps (evenly spaced).
MAX_SAMPLE_STEPS = 960
#: Totals closer than this (EUR) count as a tie in the ranking.
TIE_EUR = 0.5
#: Packages whose versions are shown (installed where the report is built).
PACKAGES = ("tsodso", "pandapower", "mosaik", "pyomo", "highspy", "simbench", "numpy", "h5py",
            "matplotlib")

_PALETTE = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#bcbd22", "#17becf")
_PART_COLORS = {"tso": "#1f77b4", "dso": "#2ca02c", "brp": "#9467bd", "imbalance": "#ff7f0e",
                "violation": "#d62728"}
_KIND_COLORS = {"opposite_direction": "#d62728", "tso_causes_dso_violation": "#9467bd",
                "dso_causes_tso_imbalance": "#1f77b4", "interface_schedule_deviation": "#ff7f0e",
                "double_activation": "#8c564b"}


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
@dataclass
class LevelStats:
    """Grid outcomes of one level (T or D) of one run."""

    volt_viol: int = 0  # (bus, step) outside the band
    overload: int = 0  # (branch, step) above the loading limit
    vm_min: float = math.nan
    vm_max: float = math.nan
    loading_max: float = math.nan
    limits: set = field(default_factory=set)  # {(vm_min_pu, vm_max_pu, loading_max_percent)}
    vm: list = field(default_factory=list)  # sampled values (arrays), for distributions
    loading: list = field(default_factory=list)
    grids: dict = field(default_factory=dict)  # grid -> (voltage bus-steps, overload steps)


@dataclass
class Run:
    """What the report needs of one results file."""

    path: Path
    key: str  # scheme name (unique within the report)
    scheme: str
    meta: dict
    kpis: dict
    n: int
    step_h: float
    times: list  # datetime of each step
    costs: dict  # part -> (n,) EUR
    dso_grid: list
    dso_by_grid: np.ndarray  # (n, G)
    act: dict
    con: dict
    if_name: list
    if_grid: list
    if_p: np.ndarray  # (n, I), + = T -> D
    levels: dict  # "T"/"D" -> LevelStats
    sample_stride: int


def _kpis(f: h5py.File, meta: dict) -> dict:
    stored = meta.get("kpis", {})
    if all(k in stored for k in KPI_UNITS):
        return {k: stored[k] for k in KPI_UNITS}
    return compute_kpis(f)  # a run whose writer was killed has no /kpis


def _decode(raw: np.ndarray) -> np.ndarray:
    """Fixed-length UTF-8 byte strings as a str array (fast path for ASCII)."""
    try:
        return raw.astype("U")
    except UnicodeDecodeError:
        uniq, inv = np.unique(raw, return_inverse=True)
        return np.array([u.decode("utf-8") for u in uniq])[inv.reshape(-1)]


def _table(f: h5py.File, name: str, n: int) -> dict[str, np.ndarray]:
    """An event table without the resource names (not needed here); rows of steps < n."""
    group = f[name]
    columns = [c.decode() if isinstance(c, bytes) else str(c) for c in group.attrs["columns"]]
    rows = min(group[c].shape[0] for c in columns)
    keep = group["step"][:rows] < n
    out = {}
    for col in columns:
        if col == "resource":
            continue
        raw = group[col][:rows][keep]
        out[col] = _decode(raw) if raw.dtype.kind == "S" else raw
    return out


def _grid_stats(f: h5py.File, n: int, stride: int) -> dict[str, LevelStats]:
    levels: dict[str, LevelStats] = {}
    slab = 8192
    for name, g in f["grids"].items():
        level = str(g.attrs["level"].decode() if isinstance(g.attrs["level"], bytes)
                    else g.attrs["level"])
        st = levels.setdefault(level, LevelStats())
        vmin, vmax = float(g.attrs["vm_min_pu"]), float(g.attrs["vm_max_pu"])
        lmax = float(g.attrs["loading_max_percent"])
        st.limits.add((vmin, vmax, lmax))
        volt = over = 0
        for r0 in range(0, n, slab):
            r1 = min(r0 + slab, n)
            vm = g["vm_pu"][r0:r1]
            ld = g["branch_loading_percent"][r0:r1]
            volt += int(np.count_nonzero((vm < vmin) | (vm > vmax)))
            over += int(np.count_nonzero(ld > lmax))
            if vm.size and not np.all(np.isnan(vm)):
                st.vm_min = float(np.fmin(st.vm_min, np.nanmin(vm)))
                st.vm_max = float(np.fmax(st.vm_max, np.nanmax(vm)))
            if ld.size and not np.all(np.isnan(ld)):
                st.loading_max = float(np.fmax(st.loading_max, np.nanmax(ld)))
            first = (-r0) % stride
            st.vm.append(vm[first::stride].ravel())
            st.loading.append(ld[first::stride].ravel())
        st.volt_viol += volt
        st.overload += over
        st.grids[name] = (volt, over)
    for st in levels.values():
        for attr in ("vm", "loading"):
            values = np.concatenate(getattr(st, attr)) if getattr(st, attr) else np.zeros(0)
            setattr(st, attr, values[~np.isnan(values)])
    return levels


def read_run(path: Path) -> Run:
    """Read one results file into a `Run` (only the steps written count)."""
    meta = read_meta(path)
    n = int(meta["steps_written"])
    step_s = int(meta["step_s"])
    stride = max(1, math.ceil(n / MAX_SAMPLE_STEPS))
    with open_results(path) as f:
        kpis = _kpis(f, meta)
        costs = {k: f["costs"][k][:n].astype(float) for k in
                 ("tso", "dso", "brp", "imbalance", "violation", "total")}
        dso_grid = [str(s) for s in f["costs/dso_grid"].asstr()[:]]
        dso_by_grid = f["costs/dso_by_grid"][:n].astype(float)
        if_name = [str(s) for s in f["interfaces/name"].asstr()[:]]
        if_grid = [str(s) for s in f["interfaces/grid"].asstr()[:]]
        if_p = f["interfaces/p_mw"][:n].astype(float)
        levels = _grid_stats(f, n, stride)
        act = _table(f, "activations", n)
        con = _table(f, "conflicts", n)
    start = meta["start"]
    times = [start + timedelta(seconds=i * step_s) for i in range(n)]
    scheme = str(meta["scheme"])
    return Run(path=Path(path), key=scheme, scheme=scheme, meta=meta, kpis=kpis, n=n,
               step_h=step_s / 3600.0, times=times, costs=costs, dso_grid=dso_grid,
               dso_by_grid=dso_by_grid, act=act, con=con, if_name=if_name, if_grid=if_grid,
               if_p=if_p, levels=levels, sample_stride=stride)


def _files(source: Path) -> list[Path]:
    """Results files of a compare directory, in summary.csv order (else scheme order)."""
    if source.is_file():
        return [source]
    files = sorted(source.glob("*.h5"))
    order = list(SCHEME_LABELS)
    summary = source / "summary.csv"
    if summary.exists():
        with summary.open(newline="") as fh:
            listed = [row["scheme"] for row in csv.DictReader(fh) if row.get("scheme")]
        order = listed + [s for s in order if s not in listed]

    def rank(p: Path) -> tuple[int, str]:
        return (order.index(p.stem) if p.stem in order else len(order), p.stem)

    return sorted(files, key=rank)


def read_runs(source: Path) -> tuple[list[Run], list[str]]:
    """All readable runs of ``source`` and notes about files that were skipped."""
    runs, notes = [], []
    for path in _files(source):
        try:
            runs.append(read_run(path))
        except (OSError, ValueError, KeyError) as exc:
            notes.append(f"{path.name} was skipped: {exc}")
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.scheme] = seen.get(r.scheme, 0) + 1
    for r in runs:
        if seen[r.scheme] > 1:
            r.key = f"{r.scheme} ({r.path.stem})"
    return runs, notes


# ---------------------------------------------------------------------------------------------
# derived quantities
# ---------------------------------------------------------------------------------------------
def _per_step(run: Run, table: dict, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    steps = table["step"][mask].astype(np.int64)
    return np.bincount(steps, weights=values[mask], minlength=run.n)[: run.n]


@dataclass
class Cross:
    """Flexibility bought across the TSO–DSO boundary in one run."""

    tso_d_mwh: float
    tso_d_eur: float
    dso_t_mwh: float
    dso_t_eur: float
    dso_own_mwh: float  # DSOs' purchases in their own grid (they move the interface)
    dso_own_net_mwh: float
    per_step_mwh: np.ndarray
    per_grid_mwh: dict  # D grid -> MWh across the boundary
    per_grid_eur: dict


def cross_level(run: Run) -> Cross:
    a = run.act
    buyer = a["buyer"].astype(str)
    level = a["level"].astype(str)
    grid = a["grid"].astype(str)
    mwh = np.abs(a["mw"].astype(float)) * run.step_h
    cost = a["cost"].astype(float)
    is_dso = np.char.startswith(buyer, "DSO:") if buyer.size else np.zeros(0, bool)
    tso_d = (buyer == "TSO") & (level == "D")
    dso_t = is_dso & (level == "T")
    own = is_dso & (level == "D")
    signed = a["direction"].astype(float) * mwh
    where = np.where(tso_d, grid, np.char.replace(buyer, "DSO:", "", count=1)
                     if buyer.size else buyer)
    cross = tso_d | dso_t
    per_grid_mwh: dict[str, float] = {}
    per_grid_eur: dict[str, float] = {}
    for g in sorted(set(where[cross])):
        m = cross & (where == g)
        per_grid_mwh[g] = float(mwh[m].sum())
        per_grid_eur[g] = float(cost[m].sum())
    return Cross(float(mwh[tso_d].sum()), float(cost[tso_d].sum()), float(mwh[dso_t].sum()),
                 float(cost[dso_t].sum()), float(mwh[own].sum()), float(signed[own].sum()),
                 _per_step(run, a, cross, mwh), per_grid_mwh, per_grid_eur)


def conflict_stats(run: Run) -> tuple[dict, dict]:
    """(kind -> (count, MWh), grid -> (count, MWh)) of one run."""
    c = run.con
    kinds, grids = c["kind"].astype(str), c["grid"].astype(str)
    mwh = np.abs(c["mw"].astype(float)) * run.step_h
    by_kind = {k: (int(np.sum(kinds == k)), float(mwh[kinds == k].sum()))
               for k in dict.fromkeys(kinds)}
    by_grid = {g: (int(np.sum(grids == g)), float(mwh[grids == g].sum()))
               for g in dict.fromkeys(grids)}
    return by_kind, by_grid


def ranking(runs: Sequence[Run]) -> list[tuple[int, Run, float, float | None]]:
    """(rank, run, EUR above the cheapest, % above the cheapest) by total cost, cheapest first.

    The sort is stable (equal totals keep the file order); totals within ``TIE_EUR`` share
    a rank."""
    ordered = sorted(runs, key=lambda r: r.kpis["total_cost_eur"])
    if not ordered:
        return []
    best = ordered[0].kpis["total_cost_eur"]
    out = []
    for r in ordered:
        total = r.kpis["total_cost_eur"]
        rank = 1 + sum(1 for o in ordered if o.kpis["total_cost_eur"] < total - TIE_EUR)
        diff = total - best
        pct = diff / abs(best) * 100.0 if abs(best) > 1e-9 else None
        out.append((rank, r, diff, pct))
    return out


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------
def esc(text: object) -> str:
    """HTML-escape any text (quotes too, so it is safe in attributes)."""
    return html.escape(str(text), quote=True)


def num(x: float, decimals: int = 0) -> str:
    """A number with thousands separators; values that round to zero are shown as 0."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) < 0.5 * 10.0 ** (-decimals):
        return "0"
    return f"{x:,.{decimals}f}".replace("-", "−")


def eur(x: float) -> str:
    """EUR: whole euros, cents below 10 EUR."""
    return num(x, 2 if 0 < abs(x) < 10 else 0)


def mwh(x: float) -> str:
    """MWh: one decimal, two below 10 MWh, three below 0.1 MWh."""
    a = abs(x)
    return num(x, 3 if 0 < a < 0.1 else 2 if a < 10 else 1)


def pct(x: float | None) -> str:
    return "–" if x is None else num(x, 1) + " %"


def count(x: int) -> str:
    return f"{int(x):,}"


def label(run: Run) -> str:
    name = SCHEME_LABELS.get(run.scheme, run.scheme)
    return name if run.key == run.scheme else f"{name} ({run.key})"


def short(run: Run) -> str:
    name = SCHEME_SHORT.get(run.scheme, run.scheme)
    return name if run.key == run.scheme else f"{name} ({run.key})"


def kind_label(kind: str) -> str:
    return CONFLICT_LABELS.get(kind, kind.replace("_", " "))


def _color(runs: Sequence[Run], run: Run) -> str:
    known = list(SCHEME_LABELS)
    if run.scheme in known and run.key == run.scheme:
        return _PALETTE[known.index(run.scheme) % len(_PALETTE)]
    return _PALETTE[(len(known) + runs.index(run)) % len(_PALETTE)]


def _scheme_cell(run: Run, full: bool = False) -> str:
    if full:
        return f'{esc(label(run))} <code>{esc(run.key)}</code>'
    return esc(short(run))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, tid: str = "",
          caption: str = "", numeric_from: int = 1, row_attrs: Sequence[str] | None = None,
          ) -> str:
    """An HTML table; cells are HTML already (escape text before); columns from
    ``numeric_from`` on are right-aligned numbers."""
    idattr = f' id="{tid}"' if tid else ""
    cls = ' class="cap"' if caption else ""
    out = [f'<div class="scroll"><table{idattr}{cls}>']
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th scope="col"{" class=num" if i >= numeric_from else ""}>{h}</th>'
        for i, h in enumerate(headers)) + "</tr></thead><tbody>")
    for j, row in enumerate(rows):
        attrs = f" {row_attrs[j]}" if row_attrs else ""
        cells = []
        for i, cell in enumerate(row):
            if i == 0:
                cells.append(f'<th scope="row">{cell}</th>')
            else:
                cells.append(f'<td{" class=num" if i >= numeric_from else ""}>{cell}</td>')
        out.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def _new_figure(height: float = 3.4, width: float = 9.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg (raster) backend, without pyplot's global state
    return fig


def _time_axis(ax) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(True, alpha=0.3)


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def figure_html(fig, fid: str, alt: str, caption: str) -> str:
    """The figure as an embedded PNG with caption (HTML) and alt text (plain, escaped here)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    data = buf.getvalue()
    w, h = _png_size(data)
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure id="fig-{fid}"><img src="data:image/png;base64,{b64}" width="{w}" '
            f'height="{h}" alt="{esc(alt)}"><figcaption>{caption}</figcaption></figure>')


def _bar_costs(runs: Sequence[Run]) -> str:
    fig = _new_figure(height=0.9 + 0.45 * len(runs))
    ax = fig.add_subplot()
    names = [short(r) for r in runs]
    y = np.arange(len(runs))
    pos = np.zeros(len(runs))
    neg = np.zeros(len(runs))
    for key, name in COST_PARTS:
        vals = np.array([r.kpis[f"{key}_cost_eur"] for r in runs])
        if not np.any(np.abs(vals) >= TIE_EUR):
            continue
        left = np.where(vals >= 0, pos, neg)
        ax.barh(y, vals, left=left, color=_PART_COLORS[key], label=name, height=0.6)
        pos += np.maximum(vals, 0)
        neg += np.minimum(vals, 0)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("cost over the period (EUR)")
    ax.xaxis.set_major_formatter(_thousands())
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize="small", ncols=5, frameon=False)
    alt = "Horizontal stacked bar chart of the total cost of each scheme, split by who pays. " + \
        "; ".join(f"{label(r)}: {eur(r.kpis['total_cost_eur'])} EUR" for r in runs) + "."
    return figure_html(fig, "costs-split", alt,
                       "Total cost per scheme, split into what the TSO, the DSOs and the BRPs "
                       "paid for flexibility and the penalties for unresolved imbalance and "
                       "remaining grid violations (EUR). Numbers in the table above.")


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _line_times(runs: Sequence[Run], series: dict[str, np.ndarray], ylabel: str, fid: str,
                alt: str, caption: str, cumulative: bool = False, hline: float | None = None,
                ) -> str:
    fig = _new_figure()
    ax = fig.add_subplot()
    styles = ("-", "--", "-.", ":")
    for i, r in enumerate(runs):
        y = series[r.key]
        if cumulative:
            y = np.cumsum(y)
        ax.plot(r.times, y, color=_color(runs, r), label=short(r), lw=1.6,
                ls=styles[i % len(styles)], drawstyle="steps-post" if not cumulative else None)
    if hline is not None:
        ax.axhline(hline, color="black", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(_thousands() if cumulative else ax.yaxis.get_major_formatter())
    _time_axis(ax)
    fig.legend(loc="outside right upper", fontsize="small", frameon=False)
    return figure_html(fig, fid, alt, caption)


def _conflict_timeline(runs: Sequence[Run]) -> str:
    fig = _new_figure(height=1.0 + 0.5 * len(runs))
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


def _boxes(runs: Sequence[Run], attr: str, fid: str, unit: str, what: str) -> str:
    fig = _new_figure(height=0.9 + 0.42 * len(runs), width=9.6)
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
            colors.append(_color(runs, r))
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
    return figure_html(fig, fid, alt,
                       f"Distribution of {what} over all {'buses' if attr == 'vm' else 'branches'}"
                       f" and steps{_stride_note(runs)}: the box holds the middle half of the "
                       f"values, the black line is the median, whiskers reach the lowest and "
                       f"highest value; red dashed lines mark {limit_text}.")


def _stride_note(runs: Sequence[Run]) -> str:
    stride = max(r.sample_stride for r in runs)
    return f" (one step in {stride})" if stride > 1 else ""


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------
def _period(run: Run) -> str:
    minutes = run.step_h * 60
    hours = run.n * run.step_h
    if hours < 1:
        length = f"{num(hours * 60)} min"
    elif hours < 72:
        length = f"{num(hours, 2 if hours % 1 else 0)} h"
    else:
        length = f"{num(hours / 24, 1)} days"
    return (f"{length} ({count(run.n)} steps of {num(minutes)} min) from "
            f"{run.meta['start']:%Y-%m-%d %H:%M}")


def findings(runs: Sequence[Run], ranked, crosses: dict, conflicts: dict) -> list[str]:
    """Three to five plain-language findings (HTML), every number from the files."""
    out = []
    best_total = ranked[0][1].kpis["total_cost_eur"]
    tied = [r for rank, r, _, _ in ranked if rank == 1]
    coordinated = [r for _, r, _, _ in ranked if r.scheme != "none"]
    if len(runs) == 1:
        k = runs[0].kpis
        out.append(f"<strong>{esc(label(runs[0]))}</strong> costs {eur(best_total)} EUR over "
                   f"the period: {eur(k['tso_cost_eur'])} EUR paid by the TSO, "
                   f"{eur(k['dso_cost_eur'])} EUR by the DSOs, {eur(k['brp_cost_eur'])} EUR by "
                   f"BRPs, {eur(k['imbalance_cost_eur'])} EUR imbalance and "
                   f"{eur(k['violation_cost_eur'])} EUR violation penalties.")
    elif len(tied) > 1:
        out.append(f"{_names(tied)} tie for the lowest total cost, {eur(best_total)} EUR over "
                   f"the period (within {num(TIE_EUR, 1)} EUR of each other).")
    else:
        out.append(f"<strong>{esc(label(tied[0]))}</strong> has the lowest total cost: "
                   f"{eur(best_total)} EUR over the period.")
    if len(coordinated) > 1:
        worst = max(coordinated, key=lambda r: r.kpis["total_cost_eur"])
        best = min(coordinated, key=lambda r: r.kpis["total_cost_eur"])
        diff = worst.kpis["total_cost_eur"] - best.kpis["total_cost_eur"]
        if diff >= TIE_EUR:
            rel = pct(diff / abs(best.kpis["total_cost_eur"]) * 100) if abs(
                best.kpis["total_cost_eur"]) > 1e-9 else "–"
            out[-1] += (f" Among the coordination schemes the most expensive, "
                        f"{esc(label(worst))}, costs {eur(diff)} EUR ({rel}) more than "
                        f"{esc(label(best))}.")
    none = next((r for r in runs if r.scheme == "none"), None)
    if none is not None and coordinated:
        k = none.kpis
        pens = [f"{eur(k[key])} EUR {what}" for key, what in
                (("imbalance_cost_eur", "penalties for unresolved imbalance"),
                 ("violation_cost_eur", "penalties for grid violations")) if abs(k[key]) >= TIE_EUR]
        out[-1] += (f" Without coordination the same period would cost "
                    f"{eur(k['total_cost_eur'])} EUR"
                    + (f", of which {' and '.join(pens)}." if pens else "."))

    # distribution violations left
    dv = {r.key: (r.levels["D"].volt_viol, r.levels["D"].overload) for r in runs
          if "D" in r.levels}
    left = [r for r in coordinated if sum(dv.get(r.key, (0, 0))) > 0]
    if left:
        worst = max(left, key=lambda r: sum(dv[r.key]))
        clean = [r for r in coordinated if sum(dv.get(r.key, (0, 0))) == 0]
        text = (f"<strong>{esc(label(worst))}</strong> leaves the most distribution-grid "
                f"problems unresolved: {count(dv[worst.key][0])} bus-steps outside the voltage "
                f"band and {count(dv[worst.key][1])} overloaded branch-steps.")
        if clean:
            text += f" {_names(clean)} leave{'s' if len(clean) == 1 else ''} none."
        else:
            fewest = min(left, key=lambda r: sum(dv[r.key]))
            text += (f" The fewest remain with {esc(label(fewest))} "
                     f"({count(dv[fewest.key][0])} and {count(dv[fewest.key][1])}).")
        if none is not None and none.key in dv:
            worse = [r for r in coordinated if sum(dv.get(r.key, (0, 0))) > sum(dv[none.key])]
            text += (f" Without coordination: {count(dv[none.key][0])} and "
                     f"{count(dv[none.key][1])}")
            if worse:
                who = ("every coordination scheme ends" if len(worse) == len(coordinated) > 1
                       else f"{_names(worse)} end{'s' if len(worse) == 1 else ''}")
                text += f"; {who} with more distribution-grid violations than no coordination."
            else:
                text += "."
        out.append(text)
    elif dv and not coordinated:
        k = next(iter(dv.values()))
        out.append(f"Without coordination the distribution grids see {count(k[0])} bus-steps "
                   f"outside the voltage band and {count(k[1])} overloaded branch-steps.")
    elif dv:
        base = " (none arose even without coordination)" if none is not None and sum(
            dv.get(none.key, (0, 0))) == 0 else ""
        out.append("No coordination scheme leaves a voltage-band or loading violation in the "
                   f"distribution grids{base}.")

    # conflicts
    totals = {r.key: sum(c for c, _ in conflicts[r.key][0].values()) for r in runs}
    if any(totals.values()):
        top = max(runs, key=lambda r: totals[r.key])
        kinds = conflicts[top.key][0]
        main_kind = max(kinds, key=lambda k: kinds[k][0])
        grid_count: dict[str, int] = {}
        for r in runs:
            for g, (c, _) in conflicts[r.key][1].items():
                grid_count[g] = grid_count.get(g, 0) + c
        g_top = max(grid_count, key=lambda g: grid_count[g])
        all_c = sum(grid_count.values())
        vol = sum(v for _, v in kinds.values())
        out.append(f"<strong>{esc(label(top))}</strong> records the most TSO–DSO conflicts: "
                   f"{count(totals[top.key])} ({mwh(vol)} MWh), mostly "
                   f"“{esc(kind_label(main_kind))}” ({count(kinds[main_kind][0])})."
                   f" Across all schemes they concentrate in grid <code>{esc(g_top)}</code> "
                   f"({count(grid_count[g_top])} of {count(all_c)} records, "
                   f"{pct(grid_count[g_top] / all_c * 100)}).")
    else:
        out.append("No TSO–DSO conflict was recorded in any scheme.")

    # who pays
    paying = [r for r in coordinated if abs(r.kpis["dso_cost_eur"]) >= TIE_EUR]
    if paying:
        top = max(paying, key=lambda r: r.kpis["dso_cost_eur"])
        k = top.kpis
        proc = k["tso_cost_eur"] + k["dso_cost_eur"] + k["brp_cost_eur"]
        share = pct(k["dso_cost_eur"] / proc * 100) if abs(proc) > 1e-9 else "–"
        out.append(f"The DSOs pay most in <strong>{esc(label(top))}</strong>: "
                   f"{eur(k['dso_cost_eur'])} EUR ({share} of what was paid for flexibility), "
                   f"while the TSO pays {eur(k['tso_cost_eur'])} EUR there.")
    elif coordinated:
        out.append("The TSO pays for all flexibility in every scheme; the DSOs buy nothing.")

    # across the boundary
    top = max(runs, key=lambda r: r.kpis["cross_level_mwh"])
    if top.kpis["cross_level_mwh"] > 0:
        c = crosses[top.key]
        act = top.kpis["activated_mwh"]
        share = pct(top.kpis["cross_level_mwh"] / act * 100) if act > 0 else "–"
        who = []
        if c.tso_d_mwh > 0:
            who.append(f"the TSO bought {mwh(c.tso_d_mwh)} MWh from distribution-connected "
                       "resources")
        if c.dso_t_mwh > 0:
            who.append(f"the DSOs bought {mwh(c.dso_t_mwh)} MWh from transmission-connected "
                       "resources")
        out.append(f"<strong>{esc(label(top))}</strong> moves the most flexibility across the "
                   f"TSO–DSO boundary: {mwh(top.kpis['cross_level_mwh'])} MWh ({share} of its "
                   f"activated volume) for {eur(c.tso_d_eur + c.dso_t_eur)} EUR; "
                   + " and ".join(who) + ".")
    else:
        out.append("No flexibility was bought across the TSO–DSO boundary in any scheme.")
    return out[:5]


def _names(runs: Sequence[Run]) -> str:
    names = [esc(label(r)) for r in runs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def section_summary(runs, ranked, crosses, conflicts) -> str:
    rows, attrs = [], []
    for rank, r, diff, rel in ranked:
        rows.append([str(rank), _scheme_cell(r, full=True), eur(r.kpis["total_cost_eur"]),
                     eur(diff), pct(rel)])
        attrs.append(f'data-scheme="{esc(r.key)}"')
    # the rank is the row header; the scheme name is a text column
    tbl = table(["Rank", "Scheme", "Total cost (EUR)", "More than the cheapest (EUR)",
                 "More than the cheapest (%)"], rows, tid="ranking", numeric_from=2,
                row_attrs=attrs,
                caption="Schemes ranked by total cost over the period (procurement by all "
                        "buyers plus penalties). Totals within "
                        f"{num(TIE_EUR, 1)} EUR share a rank.")
    cheapest = [r for rank, r, _, _ in ranked if rank == 1]
    items = "".join(f"<li>{f}</li>" for f in findings(runs, ranked, crosses, conflicts))
    head = "Cheapest" if len(runs) > 1 else "One scheme"
    return (f'<p id="cheapest">{head}: <strong>{_names(cheapest)}</strong> with '
            f"{eur(ranked[0][1].kpis['total_cost_eur'])} EUR.</p>\n{tbl}\n"
            f"<h3>Findings</h3><ul id=\"findings\">{items}</ul>")


def section_costs(runs: Sequence[Run]) -> str:
    rows = []
    for r in runs:
        k = r.kpis
        rows.append([_scheme_cell(r), *(eur(k[f"{p}_cost_eur"]) for p, _ in COST_PARTS),
                     eur(k["total_cost_eur"])])
    parts = [table(["Scheme", *(f"{n} (EUR)" for _, n in COST_PARTS), "Total (EUR)"], rows,
                   tid="cost-split", row_attrs=[f'data-scheme="{esc(r.key)}"' for r in runs],
                   caption="Cost per scheme by who pays. Penalties price what the market left "
                           "unsolved: unresolved imbalance and grid violations after the "
                           "market (see Assumptions).")]
    parts.append(_bar_costs(runs))
    vol_rows = [[_scheme_cell(r), mwh(r.kpis["activated_mwh"]), mwh(r.kpis["curtailment_mwh"]),
                 mwh(r.kpis["unresolved_imbalance_mwh"]),
                 _price(r.kpis["tso_cost_eur"] + r.kpis["dso_cost_eur"] + r.kpis["brp_cost_eur"],
                        r.kpis["activated_mwh"])] for r in runs]
    parts.append(table(["Scheme", "Activated (MWh)", "of which renewable curtailment (MWh)",
                        "Unresolved imbalance (MWh)", "Average price paid (EUR/MWh)"], vol_rows,
                       tid="volumes", caption="Volumes behind the costs."))
    grids = list(dict.fromkeys(g for r in runs for g in r.dso_grid))
    if grids:
        by = {r.key: dict(zip(r.dso_grid, r.dso_by_grid.sum(axis=0), strict=True)) for r in runs}
        grows = [[f"<code>{esc(g)}</code>", *(eur(by[r.key].get(g, 0.0)) for r in runs)]
                 for g in grids]
        grows.append(["All DSOs", *(eur(sum(by[r.key].values())) for r in runs)])
        parts.append(table(["DSO grid", *(esc(short(r)) for r in runs)], grows,
                           tid="dso-costs", caption="What each DSO paid for flexibility, per "
                           "scheme (EUR). The last row is the sum of the DSOs."))
    shown, note = list(runs), ""
    others = [r.kpis["total_cost_eur"] for r in runs if r.scheme != "none"]
    none = next((r for r in runs if r.scheme == "none"), None)
    if none is not None and others and none.kpis["total_cost_eur"] > 3 * max(max(others), 0.0):
        shown = [r for r in runs if r is not none]
        note = (f" {label(none)} is left out: it ends at "
                f"{eur(none.kpis['total_cost_eur'])} EUR, which would flatten the other lines.")
    parts.append(_line_times(
        shown, {r.key: r.costs["total"] for r in shown}, "cumulative total cost (EUR)",
        "costs-time", "Line chart of the cumulative total cost of each scheme over the period; "
        + "; ".join(f"{label(r)} ends at {eur(r.kpis['total_cost_eur'])} EUR" for r in shown)
        + "." + note, "Cumulative total cost over the period, per scheme (EUR). Steep stretches "
        "are the expensive hours." + esc(note), cumulative=True))
    return "\n".join(parts)


def _price(eur_: float, mwh_: float) -> str:
    return num(eur_ / mwh_, 1) if mwh_ > 1e-9 else "–"


def section_cross(runs: Sequence[Run], crosses: dict) -> str:
    rows = []
    for r in runs:
        c = crosses[r.key]
        act = r.kpis["activated_mwh"]
        rows.append([_scheme_cell(r), mwh(c.tso_d_mwh), eur(c.tso_d_eur), mwh(c.dso_t_mwh),
                     eur(c.dso_t_eur), mwh(r.kpis["cross_level_mwh"]),
                     pct(r.kpis["cross_level_mwh"] / act * 100) if act > 0 else "–",
                     mwh(c.dso_own_mwh), mwh(c.dso_own_net_mwh)])
    parts = [
        "<p>An activation crosses the boundary when the TSO buys from a resource connected in "
        "a distribution grid, or a DSO buys from a resource connected in the transmission grid. "
        "DSO purchases in their own grid do not cross the boundary but move the interface "
        "exchange that the TSO sees; they are listed too (net: up minus down).</p>",
        table(["Scheme", "TSO from D resources (MWh)", "TSO from D resources (EUR)",
               "DSOs from T resources (MWh)", "DSOs from T resources (EUR)",
               "Across the boundary (MWh)", "Share of all activations",
               "DSOs in own grid (MWh)", "DSOs in own grid, net (MWh)"], rows, tid="cross",
              row_attrs=[f'data-scheme="{esc(r.key)}"' for r in runs],
              caption="Flexibility bought across the TSO–DSO boundary, per scheme.")]
    if any(r.kpis["cross_level_mwh"] > 0 for r in runs):
        parts.append(_line_times(
            runs, {r.key: crosses[r.key].per_step_mwh for r in runs},
            "MWh per step across the boundary", "cross-time",
            "Line chart of the energy bought across the TSO–DSO boundary in each step, per "
            "scheme; totals: " + "; ".join(f"{label(r)} {mwh(r.kpis['cross_level_mwh'])} MWh"
                                           for r in runs) + ".",
            "Energy bought across the TSO–DSO boundary in each step (MWh per step), per "
            "scheme."))
        grids = sorted({g for c in crosses.values() for g in c.per_grid_mwh})
        grows = [[f"<code>{esc(g)}</code>",
                  *(f"{mwh(crosses[r.key].per_grid_mwh.get(g, 0.0))} / "
                    f"{eur(crosses[r.key].per_grid_eur.get(g, 0.0))}" for r in runs)]
                 for g in grids]
        parts.append(table(["Grid (interface)", *(esc(short(r)) for r in runs)],
                           grows, tid="cross-grid",
                           caption="Across the boundary per distribution grid, cells: MWh / "
                                   "EUR (the grid of the resource the TSO bought, or of the "
                                   "DSO that bought from the transmission grid)."))
    else:
        parts.append("<p>No flexibility was bought across the TSO–DSO boundary in any "
                     "scheme.</p>")
    parts.append(_line_times(
        runs, {r.key: r.if_p.sum(axis=1) if r.if_p.size else np.zeros(r.n) for r in runs},
        "exchange T → D, all interfaces (MW)", "interface-time",
        "Line chart of the total active power exchange from the transmission into the "
        "distribution grids over the period, per scheme.",
        "Total interface exchange from transmission into distribution grids (MW; negative: "
        "distribution grids export), per scheme.", hline=0.0))
    return "\n".join(parts)


def section_conflicts(runs: Sequence[Run], conflicts: dict) -> str:
    parts = [table(["Kind of conflict", "Meaning"],
                   [[esc(kind_label(k)), esc(v)] for k, v in CONFLICT_TEXT.items()],
                   tid="conflict-meaning", numeric_from=9,
                   caption="What is recorded as a conflict (per step and distribution grid).")]
    kinds = [k for k in CONFLICT_TEXT if any(k in conflicts[r.key][0] for r in runs)]
    kinds += sorted({k for r in runs for k in conflicts[r.key][0]} - set(kinds))
    rows = [[esc(kind_label(k)),
             *(f"{count(conflicts[r.key][0].get(k, (0, 0.0))[0])} / "
               f"{mwh(conflicts[r.key][0].get(k, (0, 0.0))[1])}" for r in runs)] for k in kinds]
    rows.append(["<strong>All kinds</strong>",
                 *(f"<strong>{count(r.kpis['conflicts'])} / {mwh(r.kpis['conflict_mwh'])}"
                   "</strong>" for r in runs)])
    attrs = [f'data-kind="{esc(k)}"' for k in kinds] + ['data-kind="all"']
    parts.append(table(["Kind", *(esc(short(r)) for r in runs)], rows,
                       tid="conflict-kinds", row_attrs=attrs,
                       caption="Conflict records and their volume per kind and scheme, cells: "
                               "records / MWh (volume = |MW| × step length)."))
    if any(r.kpis["conflicts"] for r in runs):
        parts.append(_conflict_timeline(runs))
        grid_tot: dict[str, int] = {}
        for r in runs:
            for g, (c, _) in conflicts[r.key][1].items():
                grid_tot[g] = grid_tot.get(g, 0) + c
        top = sorted(grid_tot, key=lambda g: (-grid_tot[g], g))[:15]
        grows = [[f"<code>{esc(g)}</code>",
                  *(f"{count(conflicts[r.key][1].get(g, (0, 0))[0])} / "
                    f"{mwh(conflicts[r.key][1].get(g, (0, 0.0))[1])}" for r in runs),
                  count(grid_tot[g])] for g in top]
        more = f" (the {len(top)} of {len(grid_tot)} grids with most records)" if len(
            grid_tot) > len(top) else ""
        parts.append(table(["Grid", *(esc(short(r)) for r in runs),
                            "All schemes (records)"], grows, tid="conflict-grids",
                           caption=f"Where conflicts concentrate{more}, cells: records / MWh."))
    else:
        parts.append("<p>No conflict was recorded in any scheme.</p>")
    return "\n".join(parts)


def section_grid(runs: Sequence[Run]) -> str:
    parts = []
    for level, name in (("D", "Distribution grids (level D)"),
                        ("T", "Transmission grid (level T)")):
        have = [r for r in runs if level in r.levels]
        if not have:
            continue
        rows = []
        for r in have:
            st = r.levels[level]
            rows.append([_scheme_cell(r), count(st.volt_viol), count(st.overload),
                         num(st.vm_min, 3), num(st.vm_max, 3), num(st.loading_max, 1)])
        lims = sorted(set().union(*(r.levels[level].limits for r in have)))
        lim_text = "; ".join(f"voltage band {a:.3f}–{b:.3f} pu, loading limit {num(c, 0)} %"
                             for a, b, c in lims)
        parts.append(table(["Scheme", "Bus-steps outside the voltage band",
                            "Overloaded branch-steps", "Lowest voltage (pu)",
                            "Highest voltage (pu)", "Highest loading (%)"], rows,
                           tid=f"violations-{level}",
                           row_attrs=[f'data-scheme="{esc(r.key)}"' for r in have],
                           caption=f"{name} after the market: violations and extremes "
                                   f"({esc(lim_text)}). A bus-step is one bus in one step."))
    bad = sorted({g for r in runs for st in r.levels.values() for g, v in st.grids.items()
                  if sum(v) > 0})
    if bad:
        def cell(r: Run, g: str) -> str:
            for st in r.levels.values():
                if g in st.grids:
                    v, o = st.grids[g]
                    return f"{count(v)} / {count(o)}"
            return "–"
        parts.append(table(["Grid", *(esc(short(r)) for r in runs)],
                           [[f"<code>{esc(g)}</code>", *(cell(r, g) for r in runs)] for g in bad],
                           tid="violations-grids",
                           caption="Grids with any violation in any scheme, cells: bus-steps "
                                   "outside the voltage band / overloaded branch-steps."))
    else:
        parts.append("<p>No grid has a voltage-band or loading violation in any scheme.</p>")
    parts.append(_boxes(runs, "vm", "voltages", "pu", "bus voltages"))
    parts.append(_boxes(runs, "loading", "loadings", "%", "branch loadings"))
    parts.append(_interface_part(runs))
    return "\n".join(parts)


def _interface_part(runs: Sequence[Run]) -> str:
    """Interface exchange per scheme against the no-coordination run and the schedule."""
    none = next((r for r in runs if r.scheme == "none"), None)
    rows = []
    for r in runs:
        total = r.if_p.sum(axis=1) if r.if_p.size else np.zeros(r.n)
        dev = [r.con["mw"][r.con["kind"].astype(str) == "interface_schedule_deviation"]]
        dev_n = int(dev[0].size)
        dev_mwh = float(np.abs(dev[0]).sum()) * r.step_h
        if none is not None and none.if_p.shape == r.if_p.shape and r is not none:
            shift = np.abs(r.if_p - none.if_p).sum(axis=1)
            shift_txt = (num(float(shift.mean()), 2), num(float(shift.max()), 2))
        else:
            shift_txt = ("–", "–")
        rows.append([_scheme_cell(r), mwh(float(total.sum()) * r.step_h),
                     num(float(total.min()), 1) if total.size else "–",
                     num(float(total.max()), 1) if total.size else "–", *shift_txt,
                     count(dev_n) if r.scheme == "shared_balancing" else "–",
                     mwh(dev_mwh) if r.scheme == "shared_balancing" else "–"])
    text = ("<p>The files do not store the agreed interface schedules themselves. Shared "
            "balancing records every step in which an interface left its schedule (the "
            "forecast exchange) by more than the tolerance as an <em>interface schedule "
            "deviation</em>; for all schemes the exchange is compared with the run without "
            "coordination, where nothing was activated.</p>")
    return text + table(
        ["Scheme", "Energy T → D (MWh)", "Lowest exchange (MW)", "Highest exchange (MW)",
         "Mean shift vs. no coordination (MW)", "Largest shift vs. no coordination (MW)",
         "Schedule deviations (records)", "Schedule deviations (MWh)"], rows, tid="interfaces",
        caption="Interface exchange, all interfaces together (positive: transmission → "
                "distribution). Shift = Σ over interfaces of |exchange − exchange without "
                "coordination|.")


# ---------------------------------------------------------------------------------------------
# assumptions
# ---------------------------------------------------------------------------------------------
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


def _unit(key: str) -> str:
    if key.startswith("price") or key == "price_step":
        return "EUR/MWh"
    if key == "block_mw":
        return "MW"
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def _val(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return esc(f"{v:,.6g}")
    if isinstance(v, int):
        return esc(f"{v:,}")
    if isinstance(v, datetime):
        return esc(v.isoformat(sep=" "))
    return esc(v)


def _toml_tables(data: dict) -> str:
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
                           [[f"<code>{esc(k)}</code>", _val(v), esc(_unit(k))]
                            for k, v in flat.items()], numeric_from=1)
        groups: dict[tuple, list] = {}
        for k, v in nested.items():
            groups.setdefault(tuple(v), []).append(k)
        for cols, keys in groups.items():
            headers = ["", *(f"<code>{esc(c)}</code>"
                             + (f" ({esc(_unit(c))})" if _unit(c) else "") for c in cols)]
            html_ += table(headers, [[f"<code>{esc(k)}</code>",
                                      *(_val(nested[k][c]) for c in cols)] for k in keys])
        parts.append(html_)
    return "\n".join(parts)


def _versions() -> list[tuple[str, str]]:
    out = []
    for pkg in PACKAGES:
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            out.append((pkg, "not installed"))
    return out


def _builtin_match(toml_text: str, steps: int, seed: int) -> str | None:
    """The built-in scenario that, with these steps and seed, is the stored scenario (both
    resolved by the installed tsodso, so keys added since the run take their defaults)."""
    try:
        from tsodso.scenarios.load import builtin_names, load, parse

        stored = parse(toml_text, "stored scenario")
        if stored.name not in builtin_names():
            return None
        same = load(stored.name, {"run.steps": steps, "run.seed": seed}) == stored
        return stored.name if same else None
    except Exception:  # noqa: BLE001 - any failure means "not reproducible by name"
        return None


def _toml_filename(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    return (safe[:60] or "scenario") + ".toml"


def reproduce(runs: Sequence[Run], source: Path, toml_text: str) -> tuple[str, str, str]:
    """(command, scenario argument, TOML file name) that reproduce the runs."""
    first = runs[0]
    steps, seed = int(first.meta["n_steps"]), int(first.meta["seed"])
    try:
        name = str(tomllib.loads(toml_text).get("name", "scenario"))
    except tomllib.TOMLDecodeError:
        name = "scenario"
    fname = _toml_filename(name)
    builtin = _builtin_match(toml_text, steps, seed)
    arg = builtin or fname
    if source.is_file():
        cmd = ["tsodso", "run", arg, "--scheme", first.scheme, "--steps", str(steps),
               "--seed", str(seed), "--out", str(source)]
    else:
        cmd = ["tsodso", "compare", arg, "--schemes", ",".join(r.scheme for r in runs),
               "--steps", str(steps), "--seed", str(seed), "--out", str(source)]
    return shlex.join(cmd), arg, fname


def section_assumptions(runs: Sequence[Run], source: Path, notes: list[str]) -> str:
    first = runs[0]
    toml_text = str(first.meta.get("scenario_toml", ""))
    try:
        data = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        data = {}
        notes.append(f"the stored scenario is not valid TOML: {exc}")
    parts = ["<h3>Schemes as implemented</h3><dl class=schemes>"]
    for r in runs:
        text = SCHEME_TEXT.get(r.scheme, "A scheme this report does not know.")
        if r.scheme == "centralized":
            pre = data.get("market", {}).get("prequalification")
            if pre is not None:
                text += f" In this run DSO prequalification is {'on' if pre else 'off'}."
        if r.scheme == "integrated":
            brp = data.get("market", {}).get("brp_trading")
            if brp is not None:
                text += f" In this run BRP trading is {'on' if brp else 'off'}."
        if r.scheme == "common":
            dec = data.get("market", {}).get("common_decomposed")
            if dec:
                text += (" In this run the decomposed variant was used: DSO constraints first, "
                         "then the joint clearing.")
        parts.append(f"<dt>{_scheme_cell(r, full=True)}</dt><dd>{esc(text)}</dd>")
    parts.append("</dl>")
    parts.append(
        "<h3>Method</h3><ul>"
        "<li>Every scheme sees the same grid, day, forecasts and offers. Markets clear on "
        "forecasts with linear network models (transmission: DC power flow; distribution: "
        "linearised AC sensitivities); the grids then run a full AC power flow on realised "
        "values with the activations, and what stays violated is counted and priced.</li>"
        "<li>Total cost = what all buyers paid for flexibility + unresolved imbalance × the "
        "imbalance penalty + penalties for branch overloads (MVA above the rating) and buses "
        "outside the voltage band after the market. Costs are in EUR, positive = paid.</li>"
        "<li>Energy = |MW| × step length; direction up = more injection or less consumption."
        "</li><li>Violations count (bus, step) pairs outside the voltage band and (branch, "
        "step) pairs above the loading limit of the grid's level.</li></ul>")
    sc = data
    parts.append("<h3>Scenario</h3>")
    run_cfg = sc.get("run", {})
    grid_cfg = sc.get("grid", {})
    grid_txt = (f"SimBench <code>{esc(grid_cfg.get('code', ''))}</code>"
                if grid_cfg.get("source") == "simbench" else
                f"<code>{esc(grid_cfg.get('source', ''))}</code> (built-in test grid)")
    n_grids = {lv: sum(1 for r in runs[:1] for _ in r.levels.get(lv, LevelStats()).grids)
               for lv in ("T", "D")}
    facts = [
        ("Name", esc(sc.get("name", first.meta.get("scenario", "")))),
        ("Description", esc(sc.get("description", "")) or "–"),
        ("Grid", f"{grid_txt}: {n_grids['T']} transmission grid(s), {n_grids['D']} "
                 f"distribution grid(s), {len(first.if_name)} interface(s)"),
        ("Period", esc(_period(first))),
        ("Seed (forecast errors)", esc(first.meta.get("seed"))),
        ("Pricing rule", esc(sc.get("market", {}).get("pricing", "–"))),
    ]
    if run_cfg.get("steps") is not None and int(run_cfg["steps"]) != first.n:
        facts.append(("Steps planned", esc(run_cfg["steps"])))
    parts.append(table(["", ""], [[k, v] for k, v in facts], tid="scenario-facts",
                       numeric_from=9))
    parts.append(_toml_tables({k: v for k, v in sc.items() if k not in ("grid", "run")}))

    parts.append("<h3>Reproduce</h3>")
    cmd, arg, fname = reproduce(runs, source, toml_text)
    b64 = base64.b64encode(toml_text.encode("utf-8")).decode("ascii")
    link = (f'<a download="{esc(fname)}" href="data:application/toml;base64,{b64}">'
            f"{esc(fname)}</a>")
    if arg == fname:
        parts.append(f"<p>Save the scenario below as {link} (the link holds the file) and "
                     "run:</p>")
    else:
        parts.append(f"<p>The stored scenario is the built-in <code>{esc(arg)}</code> with these "
                     f"steps and seed; run:</p>")
    parts.append(f'<pre id="command"><code>{esc(cmd)}</code></pre>')
    if arg != fname:
        parts.append(f"<p>The full scenario as stored in the files is below (download: {link}); "
                     "it reproduces the run even if the built-in scenario changes in a later "
                     "version.</p>")
    parts.append(f'<pre id="scenario-toml">{esc(toml_text)}</pre>')

    parts.append("<h3>Software</h3>")
    wrote = sorted({str(r.meta.get("software_version", "?")) for r in runs})
    rows = [["tsodso that wrote the files", esc(", ".join(wrote))]]
    rows += [[f"{esc(p)} (installed when this report was built)", esc(v)]
             for p, v in _versions()]
    parts.append(table(["Package", "Version"], rows, tid="versions", numeric_from=9))
    frows = [[f"<code>{esc(r.path.name)}</code>", _scheme_cell(r, full=True),
              count(r.n) + " of " + count(int(r.meta["n_steps"])),
              "yes" if r.meta["complete"] else "<strong>no</strong>"] for r in runs]
    parts.append(table(["File", "Scheme", "Steps written", "Complete"], frows, tid="files",
                       numeric_from=2, caption="Files this report was built from."))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# page
# ---------------------------------------------------------------------------------------------
CSS = """
:root { --ink: #1b1b1b; --muted: #555; --rule: #c8c8c8; --band: #f3f5f7; --accent: #1f4e79; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial,
       sans-serif; color: var(--ink); margin: 0; line-height: 1.45; font-size: 15px; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 3px solid var(--accent); }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; color: var(--accent); }
h2 { font-size: 1.35rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem;
     border-bottom: 1px solid var(--rule); color: var(--accent); }
h3 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
h4 { font-size: 1rem; margin: 1rem 0 .3rem; font-family: ui-monospace, monospace; }
.lede { color: var(--muted); margin: .2rem 0 .8rem; }
nav ol { display: flex; flex-wrap: wrap; gap: .3rem 1.4rem; padding: 0; margin: .6rem 0 1rem;
         list-style: none; counter-reset: sec; }
nav li { counter-increment: sec; }
nav li::before { content: counter(sec) ". "; color: var(--muted); }
nav a { color: var(--accent); }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; }
table.cap { min-width: 26rem; }
caption { caption-side: top; text-align: left; color: var(--muted); padding: 0 0 .3rem;
          font-size: .88rem; }
th, td { border-bottom: 1px solid var(--rule); padding: .28rem .6rem; vertical-align: top;
         text-align: left; }
thead th { background: var(--band); border-bottom: 2px solid var(--rule); font-weight: 600; }
tbody th { font-weight: normal; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.scroll { max-width: 100%; overflow-x: auto; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
            font-size: .85em; }
td code, th code { color: var(--muted); }
pre { background: var(--band); padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap;
      border: 1px solid var(--rule); }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; display: block; }
#scenario-toml { column-width: 16rem; column-gap: 2rem; white-space: pre; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .3rem; }
#findings li { margin: .35rem 0; }
.warn { background: #fff4e5; border-left: 4px solid #ff7f0e; padding: .5rem .8rem; }
dl dt { font-weight: 600; margin-top: .5rem; }
dl dd { margin: .1rem 0 .3rem 1.2rem; }
footer { color: var(--muted); font-size: .85rem; margin-top: 2rem; padding-bottom: 2rem;
         border-top: 1px solid var(--rule); padding-top: .6rem; }
@media print {
  body { font-size: 11pt; }
  header, main, footer { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure, table, pre { break-inside: avoid; }
  .scroll { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
@page { margin: 16mm 14mm; }
"""


def render(runs: Sequence[Run], source: Path, notes: list[str]) -> str:
    """The whole page as a string."""
    first = runs[0]
    ranked = ranking(runs)
    crosses = {r.key: cross_level(r) for r in runs}
    conflicts = {r.key: conflict_stats(r) for r in runs}
    scen = str(first.meta.get("scenario", ""))
    warn = list(notes)
    for r in runs:
        if not r.meta["complete"]:
            warn.append(f"{r.path.name} is incomplete ({r.n:,} of {int(r.meta['n_steps']):,} "
                        "steps written): its run stopped early.")
    if len({str(r.meta.get("scenario_toml")) for r in runs}) > 1:
        warn.append("The files were not produced with the same scenario: compare with care.")
    if len({r.n for r in runs}) > 1:
        warn.append("The files cover different numbers of steps: totals are not comparable.")
    body = {
        "summary": section_summary(runs, ranked, crosses, conflicts),
        "costs": section_costs(runs),
        "cross-level": section_cross(runs, crosses),
        "conflicts": section_conflicts(runs, conflicts),
        "grid": section_grid(runs),
        "assumptions": section_assumptions(runs, source, warn),
    }
    warn_html = "".join(f'<p class="warn">{esc(w)}</p>' for w in warn)
    nav = "".join(f'<li><a href="#{sid}">{esc(title)}</a></li>' for sid, title in SECTIONS.items())
    sections = "\n".join(
        f'<section id="{sid}"><h2>{i}. {esc(SECTIONS[sid])}</h2>\n{html_}</section>'
        for i, (sid, html_) in enumerate(body.items(), start=1))
    what = ("comparison of coordination schemes" if len(runs) > 1
            else f"one run ({label(first)})")
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tsodso {esc(metadata_version('tsodso'))}">
<title>TSO–DSO coordination report: {esc(scen)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>TSO–DSO coordination: {esc(what)}</h1>
<p class="lede">Scenario <strong id="scenario-name">{esc(scen)}</strong> · {esc(_period(first))}
 · seed {esc(first.meta.get('seed'))} · {len(runs)} scheme{'s' if len(runs) != 1 else ''}:
 {_names(runs)}. All costs in EUR over the whole period; energies in MWh.</p>
<nav aria-label="Sections"><ol>{nav}</ol></nav>
{warn_html}
</header>
<main>
{sections}
</main>
<footer>Built {esc(built)} by tsodso {esc(metadata_version('tsodso'))} from
 <code>{esc(source.name)}</code>. Every number on this page is read from the results files.
</footer>
</body>
</html>
"""


def metadata_version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_report(source: Path, out: Path | None = None) -> Path:
    """Write the HTML report of a compare directory or a single results file; returns its path.

    Default output: ``<DIR>/report.html`` for a directory, ``<file>.html`` next to a file.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    runs, notes = read_runs(source)
    if not runs:
        raise ValueError(f"no readable tsodso results file in {source}")
    if out is None:
        out = source.with_suffix(".html") if source.is_file() else source / "report.html"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs, source, notes), encoding="utf-8")
    return out
