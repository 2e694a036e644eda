"""The `tsodso` command line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# Small dense linear algebra runs faster single-threaded on shared machines (and several schemes
# run side by side in `compare`); set before numpy is imported. Override by exporting the variable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

# The scenario and scheme modules are imported inside the commands, so that `--help` does not
# pay for numpy and pydantic; pyomo and pandapower load only when a run is built.


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


@click.group()
@click.version_option(package_name="tsodso")
def main() -> None:
    """Co-simulate TSO-DSO coordination schemes for buying flexibility."""
    # set-up phases and compare progress: one line each on stderr (the "tsodso" logger)
    log = logging.getLogger("tsodso")
    if not any(getattr(h, "_tsodso_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._tsodso_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)


@main.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from tsodso.scenarios.load import builtin_names, load

    for name in builtin_names():
        sc = load(name)
        click.echo(f"{name:10s} {sc.description}")


@main.command(name="schemes")
def list_schemes() -> None:
    """List the coordination schemes."""
    from tsodso.coordination.schemes import scheme_class, scheme_names

    for name in scheme_names():
        click.echo(f"{name:18s} {scheme_class(name).label}")


@main.command()
@click.argument("file")
def validate(file: str) -> None:
    """Check a scenario file (or built-in name), its grid and profiles."""
    from tsodso.scenarios.grids import check_grid
    from tsodso.scenarios.load import ScenarioError, load

    try:
        sc = load(file)
        check_grid(sc)
    except ScenarioError as exc:
        _fail(str(exc))
    click.echo(f"ok: {file}: scenario '{sc.name}', {sc.run.steps} steps of {sc.run.step_s} s "
               f"from {sc.run.start.isoformat()}, grid {sc.grid.source}")


@main.command()
@click.argument("scenario", default="default")
@click.option("--scheme", default="centralized", show_default=True,
              help="coordination scheme (see `tsodso schemes`)")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="number of steps")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="random seed")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="results file (default: <scenario>-<scheme>.h5)")
@click.option("--profile", is_flag=True, help="store power flow / clearing / total time")
def run(scenario: str, scheme: str, steps: int | None, seed: int | None, out: Path | None,
        profile: bool) -> None:
    """Run one coordination scheme on SCENARIO (a built-in name or a TOML file)."""
    from tsodso.compare import cost_line
    from tsodso.coordination.schemes import scheme_names
    from tsodso.runner import run as run_scheme
    from tsodso.scenarios.load import ScenarioError, load

    if scheme not in scheme_names():
        _fail(f"unknown scheme '{scheme}'; known: {', '.join(scheme_names())}")
    try:
        sc = load(scenario, {"run.steps": steps, "run.seed": seed})
    except ScenarioError as exc:
        _fail(str(exc))
    out = out or Path(f"{sc.name}-{scheme}.h5")
    try:
        kpis = run_scheme(sc, scheme, out, profile=profile, progress=sys.stderr.isatty())
    except ScenarioError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail(f"interrupted; the steps done so far are in {out} (complete = false)", 130)
    click.echo(f"{sc.name} / {scheme}: {sc.run.steps} steps -> {out}; {cost_line(kpis)}, "
               f"activated {kpis['activated_mwh']:,.1f} MWh")


@main.command()
@click.argument("scenario", default="default")
@click.option("--schemes", default="all", show_default=True,
              help="'all' or a comma-separated list of schemes")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="number of steps")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="random seed")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out"), show_default=True, help="output directory")
def compare(scenario: str, schemes: str, steps: int | None, seed: int | None,
            out_dir: Path) -> None:
    """Run several schemes on the same SCENARIO, seed and bids; write DIR/summary.csv."""
    from tsodso.compare import compare as run_compare
    from tsodso.compare import format_table
    from tsodso.coordination.schemes import scheme_names
    from tsodso.scenarios.load import ScenarioError, load

    known = scheme_names()
    names = list(known) if schemes == "all" else [s.strip() for s in schemes.split(",")]
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        _fail(f"unknown scheme(s) {', '.join(unknown) or '(none given)'}; "
              f"known: {', '.join(known)}")
    try:
        sc = load(scenario, {"run.steps": steps, "run.seed": seed})
        rows = run_compare(sc, names, out_dir)
    except ScenarioError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail(f"interrupted; finished schemes are in {out_dir}", 130)
    click.echo(format_table(rows))
    click.echo(f"{len(rows)} schemes, {sc.run.steps} steps -> {out_dir}/summary.csv")


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file (default: DIR/report.html, or FILE.html next to a run file)")
def report(source: Path, out: Path | None) -> None:
    """Build the self-contained HTML comparison report of a compare DIR (or one run file)."""
    from tsodso.results.report import build_report

    try:
        path = build_report(source, out)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"{source}: {exc}")
    click.echo(f"report: {path}")


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv",
              show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output directory (default: next to SOURCE)")
def export(source: Path, fmt: str, out_dir: Path | None) -> None:
    """Write the KPI table and per-step costs of a compare DIR (or one run file)."""
    from tsodso.results import export as export_results

    try:
        paths = export_results(source, fmt, out_dir)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"{source}: {exc}")
    for p in paths:
        click.echo(str(p))


if __name__ == "__main__":  # pragma: no cover
    main()
