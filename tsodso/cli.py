"""The `tsodso` command line.

Exit codes: 0 done; 2 a problem with the input, the scenario or a file (one line on stderr,
starting with ``error:``); 130 interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM. An
interrupted run leaves its steps so far in the results file (``complete = false``); ``tsodso
run --resume FILE`` continues it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from datetime import datetime
from pathlib import Path

# Small dense linear algebra runs faster single-threaded on shared machines (and several schemes
# run side by side in `compare`); set before numpy is imported. Override by exporting the variable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

# The scenario and scheme modules are imported inside the commands, so that `--help` does not
# pay for numpy and pydantic; highspy and pandapower load only when a run is built.

#: Largest seed (tsodso.scenarios.schema.SEED_MAX, the int64 the results file stores; a test
#: checks they agree).
SEED_MAX = 2**63 - 1
START_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

#: Longest error line written (characters).
_MAX_LINE = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(msg: str) -> str:
    """``msg`` as one printable line of at most ``_MAX_LINE`` characters (control characters
    shown as escapes, so nothing from a file can steer the terminal)."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(msg))
    return text if len(text) <= _MAX_LINE else f"{text[:_MAX_LINE - 3]}..."


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"error: {one_line(msg)}", err=True)
    sys.exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so it ends as Ctrl-C does (file finished)."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the file be finished
    raise Terminated()


def _interrupted(exc: KeyboardInterrupt, what: str) -> None:
    if isinstance(exc, Terminated):
        _fail(f"terminated (SIGTERM); {what}", 143)
    _fail(f"interrupted; {what}", 130)


@click.group()
@click.version_option(package_name="tsodso")
def main() -> None:
    """Co-simulate TSO-DSO coordination schemes for buying flexibility."""
    # set-up phases and compare progress: one line each on stderr (the "tsodso" logger)
    from tsodso.logs import to_stderr

    to_stderr()


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
    click.echo(one_line(f"ok: {file}: scenario '{sc.name}', {sc.run.steps} steps of "
                        f"{sc.run.step_s} s from {sc.run.start.isoformat()}, "
                        f"grid {sc.grid.source}"))


@main.command()
@click.argument("scenario", default="default")
@click.option("--scheme", default="centralized", show_default=True,
              help="coordination scheme (see `tsodso schemes`)")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="number of steps")
@click.option("--start", type=click.DateTime(START_FORMATS), default=None,
              help="first step (local time within the profile year 2016, e.g. 2016-01-01 "
                   "for a whole year); default: the scenario's")
@click.option("--seed", type=click.IntRange(min=0, max=SEED_MAX), default=None,
              help="random seed")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="results file (default: <scenario>-<scheme>.h5 in the working directory)")
@click.option("--overwrite", is_flag=True, help="replace an existing results file")
@click.option("--resume", "resume_file", type=click.Path(path_type=Path), default=None,
              help="continue the interrupted run in this results file (SCENARIO, --scheme, "
                   "--steps, --start and --seed come from the file)")
@click.option("--profile", is_flag=True, help="store power flow / clearing / total time")
def run(scenario: str, scheme: str, steps: int | None, start: datetime | None,
        seed: int | None, out: Path | None, overwrite: bool, resume_file: Path | None,
        profile: bool) -> None:
    """Run one coordination scheme on SCENARIO (a built-in name or a TOML file)."""
    from tsodso.comparison import cost_line
    from tsodso.coordination.schemes import scheme_names
    from tsodso.results.integrity import ResultsFileError
    from tsodso.runner import check_output, default_output, resume_source
    from tsodso.runner import run as run_scheme
    from tsodso.scenarios.load import ScenarioError, load

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if resume_file is not None:
            if out is not None and out != resume_file:
                _fail("--resume writes to the file it continues; leave out --out")
            sc, scheme = resume_source(resume_file)
            out = resume_file
        else:
            if scheme not in scheme_names():
                _fail(f"unknown scheme '{scheme}'; known: {', '.join(scheme_names())}")
            sc = load(scenario, {"run.steps": steps, "run.start": start, "run.seed": seed})
            out = check_output(out if out is not None else default_output(sc.name, scheme),
                               overwrite, keep=(Path(scenario),))
        kpis = run_scheme(sc, scheme, out, profile=profile, progress=sys.stderr.isatty(),
                          resume=resume_file is not None)
    except (ScenarioError, ResultsFileError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out}: {exc.strerror or exc}")
    except KeyboardInterrupt as exc:
        _interrupted(exc, f"the steps done so far are in {out} (complete = false); "
                          f"continue with: tsodso run --resume {out}")
    click.echo(one_line(f"{sc.name} / {scheme}: {sc.run.steps} steps -> {out}; "
                        f"{cost_line(kpis)}, activated {kpis['activated_mwh']:,.1f} MWh"))


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
def repair(file: Path) -> None:
    """Finish the results FILE of a killed run: clear its "open for writing" flags, trim it to
    the steps written and store their KPIs (complete stays false)."""
    from tsodso.results.integrity import ResultsFileError
    from tsodso.results.repair import repair as repair_file

    try:
        n = repair_file(file)
    except (ResultsFileError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"{file}: {n} steps; readable by any HDF5 tool")


@main.command()
@click.argument("scenario", default="default")
@click.option("--schemes", default="all", show_default=True,
              help="'all' or a comma-separated list of schemes")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="number of steps")
@click.option("--start", type=click.DateTime(START_FORMATS), default=None,
              help="first step (local time within the profile year 2016, e.g. 2016-01-01 "
                   "for a whole year); default: the scenario's")
@click.option("--seed", type=click.IntRange(min=0, max=SEED_MAX), default=None,
              help="random seed")
@click.option("--seeds", default=None,
              help="several seeds, e.g. 1-10 or 1,4,7: a study, paired by seed (see --seed "
                   "for one)")
@click.option("--scheduler", default=None,
              help="with --seeds: Dask scheduler address tcp://HOST:PORT (default: a local "
                   "cluster)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="processes running schemes side by side (default: one per core, leaving "
                   "one core free; with --seeds: the local cluster's workers)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out"), show_default=True, help="output directory")
def compare(scenario: str, schemes: str, steps: int | None, start: datetime | None,
            seed: int | None,
            seeds: str | None, scheduler: str | None, workers: int | None,
            out_dir: Path) -> None:
    """Run several schemes on the same SCENARIO, seed and bids; write DIR/summary.csv.

    With --seeds, every scheme runs with every seed (as a study, on Dask) and the schemes
    are compared paired by seed: DIR/runs.parquet and the paired differences."""
    from tsodso.comparison import compare as run_compare
    from tsodso.comparison import format_table
    from tsodso.coordination.schemes import scheme_names
    from tsodso.results.integrity import ResultsFileError
    from tsodso.scenarios.load import ScenarioError, load

    known = scheme_names()
    names = list(known) if schemes == "all" else [s.strip() for s in schemes.split(",")]
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        _fail(f"unknown scheme(s) {', '.join(unknown) or '(none given)'}; "
              f"known: {', '.join(known)}")
    if seeds is not None:
        if seed is not None:
            _fail("give --seed or --seeds, not both")
        fixed = {k: v for k, v in (("run.steps", steps), ("run.start", start))
                 if v is not None}
        _study(lambda mk: mk(scenario, names, seeds, fixed=fixed, name=f"compare-{scenario}",
                             source="compare"), out_dir, scheduler, workers, None)
        return
    if scheduler is not None:
        _fail("--scheduler needs --seeds")
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        sc = load(scenario, {"run.steps": steps, "run.start": start, "run.seed": seed})
        rows = run_compare(sc, names, out_dir, workers)
    except (ScenarioError, ResultsFileError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out_dir}: {exc.strerror or exc}")
    except KeyboardInterrupt as exc:
        _interrupted(exc, f"finished schemes are in {out_dir}")
    click.echo(format_table(rows))
    click.echo(f"{len(rows)} schemes, {sc.run.steps} steps -> {out_dir}/summary.csv")


def _study(make: object, out_dir: Path, scheduler: str | None, workers: int | None,
           reference: str | None) -> None:
    """Build a study with ``make(make_study)`` (or a loader), run it, print the paired
    comparison; one-line errors."""
    from tsodso.results.study import default_reference, format_paired, paired
    from tsodso.scenarios.load import ScenarioError
    from tsodso.study import StudyError, make_study, run_study

    logging.getLogger("distributed").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        st = make(make_study)  # type: ignore[operator]
        table = run_study(st, out_dir, scheduler=scheduler, workers=workers,
                          progress=sys.stderr.isatty())
    except (StudyError, ScenarioError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out_dir}: {exc.strerror or exc}")
    except KeyboardInterrupt as exc:
        _interrupted(exc, f"finished runs are in {out_dir}; run the same command again to "
                          "continue")
    ok = table[table["status"] == "ok"]
    if ok.empty:
        _fail(f"no run finished; see {out_dir}/runs.csv (column 'error')", 1)
    ref = default_reference(table, reference or st.reference)
    click.echo(format_paired(paired(table, ref, st.params), ref, params=st.params))
    failed = len(table) - len(ok)
    click.echo(f"{len(table)} runs ({failed} failed), paired by case, day and seed against "
               f"{ref} -> {out_dir}/runs.parquet")
    if failed:
        sys.exit(1)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="output directory (default: out/<study name>)")
@click.option("--scheduler", default=None,
              help="address of a running Dask scheduler, tcp://HOST:PORT (default: a local "
                   "cluster sized to the cores and memory)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="workers of the local cluster (default: cores, as memory allows)")
@click.option("--dry-run", is_flag=True, help="validate every case and list the runs only")
def study(file: Path, out_dir: Path | None, scheduler: str | None, workers: int | None,
          dry_run: bool) -> None:
    """Run the study FILE (schemes x seeds x days x swept parameters) on Dask; write one
    results file per run and OUT/runs.parquet (and runs.csv). Finished runs are skipped when
    the same study is run again."""
    from tsodso.scenarios.load import ScenarioError
    from tsodso.study import StudyError, default_root, load_study, plan

    try:
        st = load_study(file)
        out = out_dir if out_dir is not None else default_root(st)
        specs = plan(st, out)
    except (StudyError, ScenarioError) as exc:
        _fail(str(exc))
    if dry_run:
        for s in specs:
            click.echo(str(s.out))
        click.echo(f"{len(specs)} runs, every case valid")
        return
    _study(lambda _: st, out, scheduler, workers, None)


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file (default: DIR/report.html, or FILE.html next to a run file)")
@click.option("--figures", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="study DIR: also write each figure as a PNG into this folder")
def report(source: Path, out: Path | None, figures: Path | None) -> None:
    """Build the self-contained HTML report of a compare DIR, a study DIR (runs.parquet) or
    one run file."""
    from tsodso.results.report import build_report
    from tsodso.results.study import is_study_dir

    try:
        if is_study_dir(source):
            from tsodso.results.report.study import build_study_report

            path = build_study_report(source, out, figures)
        else:
            if figures is not None:
                _fail("--figures is for a study directory (with runs.parquet)")
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
