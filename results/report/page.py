"""The report page: header with warnings and navigation, the sections of ``SECTIONS`` in order,
footer; one self-contained HTML file (inline styles, embedded images, no script, no external
URL). ``build_report`` reads the files and writes the page."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from tsodso.results.report import sections
from tsodso.results.report.data import ReportData, read_runs
from tsodso.results.report.format import esc, label, names, period

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


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def page_head(title: str) -> str:
    """Doctype and <head> of a report page (generator, title, the one stylesheet)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tsodso {esc(_version("tsodso"))}">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>"""


def numbered_sections(bodies: list[tuple[str, str, str]]) -> tuple[str, str]:
    """The navigation list and the numbered <section>s of (id, heading, html) triples."""
    nav = "".join(f'<li><a href="#{sid}">{esc(heading)}</a></li>' for sid, heading, _ in bodies)
    body = "\n".join(
        f'<section id="{sid}"><h2>{i}. {esc(heading)}</h2>\n{html_}</section>'
        for i, (sid, heading, html_) in enumerate(bodies, start=1))
    return nav, body


def built_stamp() -> tuple[str, str]:
    """When (UTC) and by which tsodso version (escaped for HTML) a page is built."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), esc(_version("tsodso"))


def _warnings(rep: ReportData) -> None:
    """Add the warnings about incomplete or mismatched files to ``rep.warnings``."""
    runs = rep.runs
    for r in runs:
        if not r.meta["complete"]:
            rep.warnings.append(f"{r.path.name} is incomplete ({r.n:,} of "
                                f"{int(r.meta['n_steps']):,} steps written): its run stopped "
                                "early.")
    if len({str(r.meta.get("scenario_toml")) for r in runs}) > 1:
        rep.warnings.append("The files were not produced with the same scenario: compare with "
                            "care.")
    if len({r.n for r in runs}) > 1:
        rep.warnings.append("The files cover different numbers of steps: totals are not "
                            "comparable.")


def render(rep: ReportData) -> str:
    """The whole page as a string (sections may add warnings, so they are built first)."""
    runs, first = rep.runs, rep.runs[0]
    scen = str(first.meta.get("scenario", ""))
    _warnings(rep)
    order = list(sections.SECTIONS)  # looked up now: a section added to the list is shown
    bodies = [(sid, heading, build(rep)) for sid, heading, build in order]
    warn_html = "".join(f'<p class="warn">{esc(w)}</p>' for w in rep.warnings)
    nav, body = numbered_sections(bodies)
    what = ("comparison of coordination schemes" if len(runs) > 1
            else f"one run ({label(first)})")
    built, version = built_stamp()
    return f"""{page_head(f"TSO–DSO coordination report: {scen}")}
<body>
<header>
<h1>TSO–DSO coordination: {esc(what)}</h1>
<p class="lede">Scenario <strong id="scenario-name">{esc(scen)}</strong> · {esc(period(first))}
 · seed {esc(first.meta.get('seed'))} · {len(runs)} scheme{'s' if len(runs) != 1 else ''}:
 {names(runs)}. All costs in EUR over the whole period; energies in MWh.</p>
<nav aria-label="Sections"><ol>{nav}</ol></nav>
{warn_html}
</header>
<main>
{body}
</main>
<footer>Built {esc(built)} by tsodso {version} from
 <code>{esc(rep.source.name)}</code>. Every number on this page is read from the results files.
</footer>
</body>
</html>
"""


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
    out.write_text(render(ReportData(runs, source, list(notes))), encoding="utf-8")
    return out
