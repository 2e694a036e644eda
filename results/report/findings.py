"""Plain-language findings at the top of the report: who is cheapest, which violations and
conflicts remain, who pays, what crosses the TSO–DSO boundary. Every number from the files;
the run without coordination is recognised by its file's ``scheme_counterfactual``."""

from __future__ import annotations

from tsodso.results.kpis import COST_KPI
from tsodso.results.report.data import TIE_EUR, ReportData, RunData
from tsodso.results.report.format import count, esc, eur, kind_label, label, mwh, names, num, pct

#: Unserved value components and what they value, for the findings.
UNSERVED_WHAT: tuple[tuple[str, str], ...] = (
    ("imbalance", "unserved imbalance"), ("overload_t", "transmission overloads"),
    ("overload_d", "distribution overloads"),
    ("voltage_t", "transmission voltage outside the band"),
    ("voltage_d", "distribution voltage outside the band"),
)
_PART_WHAT = (("resource", "flexibility bought (at bid prices)"), *UNSERVED_WHAT)


#: A gap between two schemes below this share of the social cost is reported as within the
#: linear network models' error (their measured error moves voltages by ~1e-3 pu and loadings
#: by ~1 percentage point, docs/schemes.md; dispatch and the values move with it).
LINEAR_MODEL_SHARE = 0.005


def cause(best: RunData, worst: RunData) -> str:
    """Which social cost components make the gap between two runs, largest first, with a
    caution where the gap rests on values of unserved quantities (penalty knobs)."""
    gaps = sorted(((worst.kpis[COST_KPI[key]] - best.kpis[COST_KPI[key]], what)
                   for key, what in _PART_WHAT), key=lambda g: -abs(g[0]))
    main = [f"{'+' if d > 0 else '−'}{eur(abs(d))} EUR {what}" for d, what in gaps
            if abs(d) >= TIE_EUR][:3]
    text = ", ".join(main) + "." if main else "no single component stands out."
    unserved_gap = sum(d for d, what in gaps if what != _PART_WHAT[0][1])
    total_gap = worst.kpis["social_cost_eur"] - best.kpis["social_cost_eur"]
    best_social = abs(best.kpis["social_cost_eur"])
    if 0 < total_gap < LINEAR_MODEL_SHARE * best_social:
        text += (f" The gap is below {pct(LINEAR_MODEL_SHARE * 100)} of the social cost: within "
                 "what the linear network models' error can move (docs/schemes.md), so the two "
                 "are equal for practical purposes.")
    elif total_gap > 0 and abs(unserved_gap) > 0.5 * total_gap:
        text += (" Most of the gap is the value of unserved quantities, so it scales with the "
                 "scenario's values for them (docs/sensitivity.md shows the ranking under other "
                 "values); the physical quantities are in the cost section.")
    return text


def findings(rep: ReportData) -> list[str]:
    """Three to five plain-language findings (HTML), every number from the files."""
    runs, ranked, crosses, conflicts = rep.runs, rep.ranked, rep.crosses, rep.conflicts
    out = []
    best_total = ranked[0][1].kpis["social_cost_eur"]
    tied = [r for rank, r, _, _ in ranked if rank == 1]
    coordinated = rep.coordinated
    if len(runs) == 1:
        k = runs[0].kpis
        out.append(f"<strong>{esc(label(runs[0]))}</strong> has a social cost of "
                   f"{eur(best_total)} EUR over the period: {eur(k['resource_cost_eur'])} EUR "
                   f"of flexibility at bid prices and {eur(k['unserved_value_eur'])} EUR for "
                   f"what stays unserved. The TSO paid {eur(k['tso_paid_eur'])} EUR, the DSOs "
                   f"{eur(k['dso_paid_eur'])} EUR and BRPs {eur(k['brp_paid_eur'])} EUR.")
    elif len(tied) > 1:
        out.append(f"{names(tied)} tie for the lowest social cost, {eur(best_total)} EUR over "
                   f"the period (within {num(TIE_EUR, 1)} EUR of each other).")
    else:
        out.append(f"<strong>{esc(label(tied[0]))}</strong> has the lowest social cost: "
                   f"{eur(best_total)} EUR over the period.")
    if len(coordinated) > 2:  # the runner-up, and why it costs more
        order = sorted(coordinated, key=lambda r: r.kpis["social_cost_eur"])
        gap = order[1].kpis["social_cost_eur"] - order[0].kpis["social_cost_eur"]
        if gap >= TIE_EUR:
            out[-1] += (f" The next, {esc(label(order[1]))}, costs {eur(gap)} EUR more: "
                        f"{cause(order[0], order[1])}")
    if len(coordinated) > 1:
        worst = max(coordinated, key=lambda r: r.kpis["social_cost_eur"])
        best = min(coordinated, key=lambda r: r.kpis["social_cost_eur"])
        diff = worst.kpis["social_cost_eur"] - best.kpis["social_cost_eur"]
        if diff >= TIE_EUR:
            rel = pct(diff / abs(best.kpis["social_cost_eur"]) * 100) if abs(
                best.kpis["social_cost_eur"]) > 1e-9 else "–"
            out[-1] += (f" Among the coordination schemes the most expensive, "
                        f"{esc(label(worst))}, costs {eur(diff)} EUR ({rel}) more than "
                        f"{esc(label(best))}: {cause(best, worst)}")
    none = rep.counterfactual
    if none is not None and coordinated:
        k = none.kpis
        pens = [f"{eur(k[COST_KPI[key]])} EUR for {what}" for key, what in UNSERVED_WHAT
                if abs(k[COST_KPI[key]]) >= TIE_EUR]
        out[-1] += (f" Without coordination the same period has a social cost of "
                    f"{eur(k['social_cost_eur'])} EUR"
                    + (f", of which {', '.join(pens)}." if pens else "."))

    # what no market can act on: T voltage left after the TSO's own set-point control
    t_volt = [r.kpis.get("unserved_voltage_t_puh", 0.0) for r in coordinated]
    if coordinated and min(t_volt) > 0:
        spread = max(t_volt) - min(t_volt)
        same = "in every scheme alike" if spread <= 1e-6 * max(t_volt) else "in every scheme"
        out[0] += (f" {num(min(t_volt), 3)} pu·h of transmission voltage stay outside the band "
                   f"{same} after the TSO's own set-point control: no market acts on it (the "
                   f"markets model the transmission grid as DC), so it is not a difference "
                   f"between the schemes.")

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
            text += f" {names(clean)} leave{'s' if len(clean) == 1 else ''} none."
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
                       else f"{names(worse)} end{'s' if len(worse) == 1 else ''}")
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
    paying = [r for r in coordinated if abs(r.kpis["dso_paid_eur"]) >= TIE_EUR]
    if paying:
        top = max(paying, key=lambda r: r.kpis["dso_paid_eur"])
        k = top.kpis
        proc = k["tso_paid_eur"] + k["dso_paid_eur"] + k["brp_paid_eur"]
        share = pct(k["dso_paid_eur"] / proc * 100) if abs(proc) > 1e-9 else "–"
        out.append(f"The DSOs pay most in <strong>{esc(label(top))}</strong>: "
                   f"{eur(k['dso_paid_eur'])} EUR ({share} of what was paid for flexibility), "
                   f"while the TSO pays {eur(k['tso_paid_eur'])} EUR there.")
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
