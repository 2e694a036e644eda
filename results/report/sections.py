"""The sections of the report: one function per section, taking the ``ReportData`` and
returning the section's HTML body, and ``SECTIONS``, the page order with ids and headings.

Adding a section is one function here and one entry in ``SECTIONS``; the page builds the
navigation, the numbered heading and the ``<section id=...>`` from that entry.
"""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Callable

import numpy as np
from tsodso.results.kpis import COST_KPI
from tsodso.results.report.assumptions import reproduce, toml_tables, versions
from tsodso.results.report.data import TIE_EUR, LevelStats, ReportData, RunData
from tsodso.results.report.figures import bar_costs, boxes, conflict_timeline, line_times
from tsodso.results.report.findings import findings
from tsodso.results.report.format import (
    SOCIAL_PARTS,
    TRANSFER_PARTS,
    count,
    esc,
    eur,
    kind_label,
    label,
    mwh,
    names,
    num,
    pct,
    period,
    price,
    scheme_cell,
    scheme_rows,
    short,
    table,
)

#: Conflict kind -> plain-language meaning.
CONFLICT_TEXT: dict[str, str] = {
    "opposite_direction": "TSO and DSO activated resources in the same distribution grid in "
                          "opposite directions (volume = the smaller of the two).",
    "tso_causes_dso_violation": "A TSO activation of distribution-connected resources created "
                                "a voltage or loading violation in that distribution grid.",
    "dso_causes_tso_imbalance": "A DSO activation shifted the interface exchange, which the "
                                "TSO then has to balance.",
    "interface_schedule_deviation": "Where DSOs keep their interface on schedule: the "
                                    "interface left its agreed schedule by more than the "
                                    "tolerance.",
    "double_activation": "One resource was sold beyond what it offered, or both up and down "
                         "to different buyers.",
}



def summary(rep: ReportData) -> str:
    """Ranking by social cost, the cheapest scheme and the findings."""
    runs, ranked = rep.runs, rep.ranked
    rows, attrs = [], []
    for rank, r, diff, rel in ranked:
        k = r.kpis
        rows.append([str(rank), scheme_cell(r, full=True), eur(k["social_cost_eur"]),
                     eur(k["resource_cost_eur"]), eur(k["unserved_value_eur"]),
                     eur(k["tso_paid_eur"] + k["dso_paid_eur"] + k["brp_paid_eur"]),
                     eur(diff), pct(rel)])
        attrs.append(f'data-scheme="{esc(r.key)}"')
    # the rank is the row header; the scheme name is a text column
    tbl = table(["Rank", "Scheme", "Social cost (EUR)", "of which flexibility (EUR)",
                 "of which unserved (EUR)", "Paid for flexibility (EUR)",
                 "More than the cheapest (EUR)", "More than the cheapest (%)"], rows,
                tid="ranking", numeric_from=2, row_attrs=attrs,
                caption="Schemes ranked by social cost over the period: the resource cost of "
                        "the activated flexibility at bid prices plus the value of the "
                        "imbalance, overloads and voltage deviations left after the market. "
                        "What buyers paid is a transfer to the providers and not part of it. "
                        f"Social costs within {num(TIE_EUR, 1)} EUR share a rank.")
    cheapest = [r for rank, r, _, _ in ranked if rank == 1]
    items = "".join(f"<li>{f}</li>" for f in findings(rep))
    head = "Cheapest" if len(runs) > 1 else "One scheme"
    return (f'<p id="cheapest">{head}: <strong>{names(cheapest)}</strong> with a social cost '
            f"of {eur(ranked[0][1].kpis['social_cost_eur'])} EUR.</p>\n{tbl}\n"
            f"<h3>Findings</h3><ul id=\"findings\">{items}</ul>")


def costs(rep: ReportData) -> str:
    """Social cost and its parts, what stays unserved, who pays (transfers), DSO payments per
    grid, and the cumulative social cost over time."""
    runs = rep.runs
    rows = []
    for r in runs:
        k = r.kpis
        rows.append([scheme_cell(r), *(eur(k[COST_KPI[p]]) for p, _ in SOCIAL_PARTS),
                     eur(k["social_cost_eur"])])
    parts = [table(["Scheme", *(f"{n} (EUR)" for _, n in SOCIAL_PARTS), "Social cost (EUR)"],
                   rows, tid="cost-split", row_attrs=scheme_rows(runs),
                   caption="Social cost per scheme: the flexibility's resource cost at bid "
                           "prices and the value of what the market left unserved, on the AC "
                           "grids after the market, at the scenario's values (see Assumptions)."
                   )]
    q_rows = [[scheme_cell(r), mwh(r.kpis["unserved_imbalance_mwh"]),
               mwh(r.kpis["unserved_overload_t_mwh"]), mwh(r.kpis["unserved_overload_d_mwh"]),
               num(r.kpis["unserved_voltage_t_puh"], 3),
               num(r.kpis["unserved_voltage_d_puh"], 3)] for r in runs]
    parts.append(table(["Scheme", "Unserved imbalance (MWh)", "T overload (MVA h)",
                        "D overload (MVA h)", "T voltage outside band (pu h)",
                        "D voltage outside band (pu h)"], q_rows, tid="unserved",
                       caption="What stays unserved after the market, in physical units."))
    t_rows = [[scheme_cell(r), *(eur(r.kpis[COST_KPI[p]]) for p, _ in TRANSFER_PARTS)]
              for r in runs]
    parts.append(table(["Scheme", *(f"{n} (EUR)" for _, n in TRANSFER_PARTS)], t_rows,
                       tid="transfers", row_attrs=scheme_rows(runs),
                       caption="Who pays: money moved between parties under the pricing rule "
                               "(what each buyer paid for flexibility, imbalance charges "
                               "settled with the TSO, and the congestion rent inside the "
                               "payments). Transfers are not part of the social cost."))
    none = rep.counterfactual
    shown, note = list(runs), ""
    others = [r.kpis["social_cost_eur"] for r in runs if not r.counterfactual]
    if none is not None and others and none.kpis["social_cost_eur"] > 3 * max(max(others), 0.0):
        shown = [r for r in runs if r is not none]
        note = (f" {label(none)} is left out: its social cost, "
                f"{eur(none.kpis['social_cost_eur'])} EUR, would flatten the other bars.")
    parts.append(bar_costs(shown) + (f"<p class=note>{esc(note.strip())}</p>" if note else ""))
    vol_rows = [[scheme_cell(r), mwh(r.kpis["activated_mwh"]), mwh(r.kpis["curtailment_mwh"]),
                 price(r.kpis["tso_paid_eur"] + r.kpis["dso_paid_eur"] + r.kpis["brp_paid_eur"],
                       r.kpis["activated_mwh"]),
                 price(r.kpis["resource_cost_eur"], r.kpis["activated_mwh"])] for r in runs]
    parts.append(table(["Scheme", "Activated (MWh)", "of which renewable curtailment (MWh)",
                        "Average price paid (EUR/MWh)", "Average bid price (EUR/MWh)"],
                       vol_rows, tid="volumes", caption="Volumes behind the costs."))
    grids = list(dict.fromkeys(g for r in runs for g in r.dso_grid))
    if grids:
        by = {r.key: dict(zip(r.dso_grid, r.dso_by_grid.sum(axis=0), strict=True)) for r in runs}
        grows = [[f"<code>{esc(g)}</code>", *(eur(by[r.key].get(g, 0.0)) for r in runs)]
                 for g in grids]
        grows.append(["All DSOs", *(eur(sum(by[r.key].values())) for r in runs)])
        parts.append(table(["DSO grid", *(esc(short(r)) for r in runs)], grows,
                           tid="dso-costs", caption="What each DSO paid for flexibility, per "
                           "scheme (EUR). The last row is the sum of the DSOs."))
    parts.append(line_times(
        shown, {r.key: r.costs["social"] for r in shown}, "cumulative social cost (EUR)",
        "costs-time", "Line chart of the cumulative social cost of each scheme over the period; "
        + "; ".join(f"{label(r)} ends at {eur(r.kpis['social_cost_eur'])} EUR" for r in shown)
        + "." + note, "Cumulative social cost over the period, per scheme (EUR). Steep "
        "stretches are the expensive hours." + esc(note), cumulative=True))
    return "\n".join(parts)


def cross_level(rep: ReportData) -> str:
    """Flexibility bought across the TSO–DSO boundary, per scheme and grid, and the
    interface exchange over time."""
    runs, crosses = rep.runs, rep.crosses
    rows = []
    for r in runs:
        c = crosses[r.key]
        act = r.kpis["activated_mwh"]
        rows.append([scheme_cell(r), mwh(c.tso_d_mwh), eur(c.tso_d_eur), mwh(c.dso_t_mwh),
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
              row_attrs=scheme_rows(runs),
              caption="Flexibility bought across the TSO–DSO boundary, per scheme.")]
    if any(r.kpis["cross_level_mwh"] > 0 for r in runs):
        parts.append(line_times(
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
    parts.append(line_times(
        runs, {r.key: r.if_p.sum(axis=1) if r.if_p.size else np.zeros(r.n) for r in runs},
        "exchange T → D, all interfaces (MW)", "interface-time",
        "Line chart of the total active power exchange from the transmission into the "
        "distribution grids over the period, per scheme.",
        "Total interface exchange from transmission into distribution grids (MW; negative: "
        "distribution grids export), per scheme.", hline=0.0))
    return "\n".join(parts)




def conflicts(rep: ReportData) -> str:
    """Conflict kinds explained, records per kind and scheme, timeline, grids with most."""
    runs, conflicts = rep.runs, rep.conflicts
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
        parts.append(conflict_timeline(runs))
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






def grid(rep: ReportData) -> str:
    """Violations and extremes per level and grid, distributions, interface exchange."""
    runs = rep.runs
    parts = []
    for level, name in (("D", "Distribution grids (level D)"),
                        ("T", "Transmission grid (level T)")):
        have = [r for r in runs if level in r.levels]
        if not have:
            continue
        rows = []
        for r in have:
            st = r.levels[level]
            rows.append([scheme_cell(r), count(st.volt_viol), count(st.overload),
                         num(st.vm_min, 3), num(st.vm_max, 3), num(st.loading_max, 1)])
        lims = sorted(set().union(*(r.levels[level].limits for r in have)))
        lim_text = "; ".join(f"voltage band {a:.3f}–{b:.3f} pu, loading limit {num(c, 0)} %"
                             for a, b, c in lims)
        parts.append(table(["Scheme", "Bus-steps outside the voltage band",
                            "Overloaded branch-steps", "Lowest voltage (pu)",
                            "Highest voltage (pu)", "Highest loading (%)"], rows,
                           tid=f"violations-{level}",
                           row_attrs=scheme_rows(have),
                           caption=f"{name} after the market: violations and extremes "
                                   f"({esc(lim_text)}). A bus-step is one bus in one step."))
    bad = sorted({g for r in runs for st in r.levels.values() for g, v in st.grids.items()
                  if sum(v) > 0})
    if bad:
        def cell(r: RunData, g: str) -> str:
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
    parts.append(_events_part(runs))
    parts.append(boxes(rep, "vm", "voltages", "pu", "bus voltages"))
    parts.append(boxes(rep, "loading", "loadings", "%", "branch loadings"))
    parts.append(_interface_part(rep))
    return "\n".join(parts)


#: Event kinds of the results file and how the report names them.
EVENT_TEXT = {
    "powerflow_not_converged": "Power flows without solution",
    "coupling_iteration_limit": "T–D coupling loop stopped at its iteration limit",
    "market_slack": "Markets that ended on their slack (imbalance left unserved)",
}


def _events_part(runs: list[RunData]) -> str:
    """How often each run met a per-step event (the file's /events table)."""
    kinds = [k for k in EVENT_TEXT if any(r.events.get(k) for r in runs)]
    kinds += sorted({k for r in runs for k in r.events} - set(kinds))
    if not kinds:
        return ("<p id=\"events\">No step had a power flow without solution, a coupling loop "
                "stopped at its limit or a market that ended on its slack.</p>")
    return table(["Event", *(esc(short(r)) for r in runs)],
                 [[esc(EVENT_TEXT.get(k, k)), *(count(r.events.get(k, 0)) for r in runs)]
                  for k in kinds],
                 tid="events", caption="Per-step events recorded in the results files "
                                       "(counts; a step can have several).")


def _interface_part(rep: ReportData) -> str:
    """Interface exchange per scheme against the no-coordination run and the schedule."""
    runs, none = rep.runs, rep.counterfactual
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
        rows.append([scheme_cell(r), mwh(float(total.sum()) * r.step_h),
                     num(float(total.min()), 1) if total.size else "–",
                     num(float(total.max()), 1) if total.size else "–", *shift_txt,
                     count(dev_n) if r.balances_areas else "–",
                     mwh(dev_mwh) if r.balances_areas else "–"])
    text = ("<p>The files do not store the agreed interface schedules themselves. Schemes in "
            "which the DSOs keep their interface on schedule record every step in which an "
            "interface left its schedule (the forecast exchange) by more than the tolerance "
            "as an <em>interface schedule deviation</em>; for all schemes the exchange is "
            "compared with the run without coordination, where nothing was activated.</p>")
    return text + table(
        ["Scheme", "Energy T → D (MWh)", "Lowest exchange (MW)", "Highest exchange (MW)",
         "Mean shift vs. no coordination (MW)", "Largest shift vs. no coordination (MW)",
         "Schedule deviations (records)", "Schedule deviations (MWh)"], rows, tid="interfaces",
        caption="Interface exchange, all interfaces together (positive: transmission → "
                "distribution). Shift = Σ over interfaces of |exchange − exchange without "
                "coordination|.")


def assumptions(rep: ReportData) -> str:
    """Schemes as implemented, method, scenario settings, reproduction, software, files."""
    runs, source, notes = rep.runs, rep.source, rep.warnings
    first = runs[0]
    toml_text = str(first.meta.get("scenario_toml", ""))
    try:
        data = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        data = {}
        notes.append(f"the stored scenario is not valid TOML: {exc}")
    parts = ["<h3>Schemes as implemented</h3><dl class=schemes>"]
    for r in runs:
        text = str(r.meta["scheme_description"]) or "The file does not describe this scheme."
        if r.meta.get("scheme_operator"):
            text += f" Market operator: {r.meta['scheme_operator']}."
        parts.append(f"<dt>{scheme_cell(r, full=True)}</dt><dd>{esc(text)}</dd>")
    parts.append("</dl>")
    parts.append(
        "<h3>Method</h3><ul>"
        "<li>Every scheme sees the same grid, day, forecasts and offers. Markets clear on "
        "forecasts with linear network models (transmission: DC power flow; distribution: "
        "linearised AC sensitivities); the grids then run a full AC power flow on realised "
        "values with the activations, and what stays violated is counted and priced.</li>"
        "<li>Social cost = the resource cost of the activated flexibility (at the providers' "
        "bid prices) + the value of what stays unserved after the market on the AC grids: "
        "imbalance (MWh × the imbalance value), MVA × h above branch ratings (× the overload "
        "value) and pu × h outside the voltage band (× the voltage value), transmission and "
        "distribution apart. The markets minimise the same terms with the same values on "
        "their linear models. Payments under the pricing rule, imbalance charges and "
        "congestion rents move money between parties: they are shown per party and never "
        "added to the social cost. EUR, positive = paid.</li>"
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
        ("Period", esc(period(first))),
        ("Seed (forecast errors)", esc(first.meta.get("seed"))),
        ("Pricing rule", esc(sc.get("market", {}).get("pricing", "–"))),
    ]
    if run_cfg.get("steps") is not None and int(run_cfg["steps"]) != first.n:
        facts.append(("Steps planned", esc(run_cfg["steps"])))
    parts.append(table(["", ""], [[k, v] for k, v in facts], tid="scenario-facts",
                       numeric_from=9))
    parts.append(toml_tables({k: v for k, v in sc.items() if k not in ("grid", "run")}))

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
             for p, v in versions()]
    parts.append(table(["Package", "Version"], rows, tid="versions", numeric_from=9))
    frows = [[f"<code>{esc(r.path.name)}</code>", scheme_cell(r, full=True),
              count(r.n) + " of " + count(int(r.meta["n_steps"])),
              "yes" if r.meta["complete"] else "<strong>no</strong>"] for r in runs]
    parts.append(table(["File", "Scheme", "Steps written", "Complete"], frows, tid="files",
                       numeric_from=2, caption="Files this report was built from."))
    return "\n".join(parts)


#: A section: (id, heading, function building its HTML body), in page order.
Section = tuple[str, str, Callable[[ReportData], str]]

#: The report's sections in page order; ids are stable (links, tests).
SECTIONS: list[Section] = [
    ("summary", "Summary", summary),
    ("costs", "Costs: who pays", costs),
    ("cross-level", "Flexibility bought across the TSO–DSO boundary", cross_level),
    ("conflicts", "Conflicts between TSO and DSO actions", conflicts),
    ("grid", "Grid outcomes", grid),
    ("assumptions", "Assumptions and method", assumptions),
]
