"""Number formatting, HTML escaping, scheme and conflict names, and HTML tables of the report.

Every text that comes from a file goes through ``esc``; helpers that return HTML say so."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from tsodso.core.vocabulary import SOCIAL_KEYS, TRANSFER_KEYS
from tsodso.results.report.data import RunData

#: Social cost component -> its name, in the order of ``SOCIAL_KEYS``.
SOCIAL_PARTS: tuple[tuple[str, str], ...] = tuple(zip(SOCIAL_KEYS, (
    "Flexibility (bid prices)", "Unserved imbalance", "T overloads", "D overloads",
    "T voltage", "D voltage"), strict=True))
#: Transfer -> its name, in the order of ``TRANSFER_KEYS``.
TRANSFER_PARTS: tuple[tuple[str, str], ...] = tuple(zip(TRANSFER_KEYS, (
    "TSO paid", "DSOs paid", "BRPs paid", "BRP imbalance charges", "DSO imbalance charges",
    "Congestion rent"), strict=True))

#: Conflict kind -> short name.
CONFLICT_LABELS: dict[str, str] = {
    "opposite_direction": "Opposite directions",
    "tso_causes_dso_violation": "TSO activation causes DSO violation",
    "dso_causes_tso_imbalance": "DSO activation causes TSO imbalance",
    "interface_schedule_deviation": "Interface schedule deviation",
    "double_activation": "Double activation",
}


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
    """A percentage with one decimal, "–" if undefined."""
    return "–" if x is None else num(x, 1) + " %"


def count(x: int) -> str:
    """A count with thousands separators."""
    return f"{int(x):,}"


def price(eur_: float, mwh_: float) -> str:
    """Average price EUR/MWh, "–" without volume."""
    return num(eur_ / mwh_, 1) if mwh_ > 1e-9 else "–"


def label(run: RunData) -> str:
    """Plain-language scheme name as stored in the file (plain text, escape it)."""
    name = str(run.meta["scheme_label"])
    return name if run.key == run.scheme else f"{name} ({run.key})"


def short(run: RunData) -> str:
    """Short scheme name for table columns and rows (plain text, escape it)."""
    name = str(run.meta["scheme_short"])
    return name if run.key == run.scheme else f"{name} ({run.key})"


def kind_label(kind: str) -> str:
    """Short name of a conflict kind (plain text)."""
    return CONFLICT_LABELS.get(kind, kind.replace("_", " "))


def scheme_cell(run: RunData, full: bool = False) -> str:
    """HTML: the short name, or the full name with the scheme key as code."""
    if full:
        return f'{esc(label(run))} <code>{esc(run.key)}</code>'
    return esc(short(run))


def names(runs: Sequence[RunData]) -> str:
    """HTML: "A, B and C" of the runs' full names."""
    items = [esc(label(r)) for r in runs]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def period(run: RunData) -> str:
    """Plain text: length, steps and start of the run's period."""
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


def scheme_rows(runs: Sequence[RunData]) -> list[str]:
    """Row attributes naming each run's scheme (``data-scheme``), for tests and styling."""
    return [f'data-scheme="{esc(r.key)}"' for r in runs]


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
