"""Run several schemes on the same scenario (same grid, day, forecasts and bids) and tabulate.

Each scheme writes DIR/<scheme>.h5 (with its /timing); the KPIs of all schemes go to
DIR/summary.csv. Schemes run in parallel processes when more than one core is free.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tsodso.logs import to_stderr
from tsodso.results.kpis import KPI_UNITS
from tsodso.scenarios.load import to_toml
from tsodso.scenarios.schema import Scenario

log = logging.getLogger("tsodso")


def _one(args: tuple[str, str, Path]) -> tuple[str, dict[str, float]]:
    """Run one scheme; the scenario comes as its TOML text (what the results file stores),
    because its error models are classes made at load time, which a process pool cannot
    pickle."""
    from tsodso.runner import run
    from tsodso.scenarios.load import parse

    text, scheme, out = args
    scenario = parse(text, "the compared scenario")
    # several schemes: one progress line per scheme, not every scheme's set-up phases
    setup_log = logging.getLogger("tsodso.setup")
    level = setup_log.level
    setup_log.setLevel(logging.WARNING)
    try:
        return scheme, run(scenario, scheme, out, profile=True)
    finally:
        setup_log.setLevel(level)


def cost_line(kpis: dict[str, float]) -> str:
    """The social cost split into the flexibility's resource cost and the value of what stays
    unserved, and what the buyers paid (a transfer), as the CLI prints it."""
    paid = sum(kpis[k] for k in ("tso_paid_eur", "dso_paid_eur", "brp_paid_eur"))
    return (f"social cost {kpis['social_cost_eur']:,.0f} EUR = flexibility "
            f"{kpis['resource_cost_eur']:,.0f} + unserved {kpis['unserved_value_eur']:,.0f}; "
            f"buyers paid {paid:,.0f}")


def workers(n_schemes: int, wanted: int | None = None) -> int:
    """Processes to use: `wanted` if given, else one per scheme leaving one core free; never
    more than the schemes, at least one."""
    free = wanted if wanted is not None else max((os.cpu_count() or 1) - 1, 1)
    return max(1, min(n_schemes, free))


#: Imported once by the server the scheme processes fork from (see `fresh_processes`).
PRELOAD = ["tsodso.runner", "tsodso.scenarios.world", "pandapower", "highspy", "mosaik"]


def fresh_processes(n: int) -> ProcessPoolExecutor:
    """`n` worker processes, each running one scheme and then replaced by a fresh one, so that
    a run's memory is its own and not also what an earlier run in the same process left behind
    (in a year of six in reused processes, shared_balancing ran at 1.25 GiB after integrated
    in the same process; docs/performance.md). The processes
    fork from a server that has imported the simulator once (`PRELOAD`), so a fresh process
    costs a fork, not the imports; where there is no fork server, they start anew."""
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(max_workers=n, max_tasks_per_child=1, mp_context=ctx,
                               initializer=to_stderr)


def longest_first(jobs: list[tuple[str, str, Path]]) -> list[tuple[str, str, Path]]:
    """The jobs ordered by their scheme's `step_cost`, dearest first (ties keep their order):
    with more schemes than processes, the long runs start at once and the short ones fill in
    behind them, so the processes end close together (a year of all six on two processes:
    about 108 instead of 126 minutes by bench_year's figures, docs/performance.md)."""
    from tsodso.coordination.schemes import scheme_class

    return sorted(jobs, key=lambda job: -scheme_class(job[1]).step_cost)


def compare(scenario: Scenario, schemes: list[str], out_dir: Path,
            n_workers: int | None = None) -> list[dict[str, float]]:
    """Run every scheme (in `n_workers` processes; default: see `workers`); returns one KPI
    row per scheme (in the order given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = to_toml(scenario)
    jobs = [(text, s, out_dir / f"{s}.h5") for s in schemes]
    n = workers(len(jobs), n_workers)
    t0 = time.perf_counter()
    log.info("compare: %d scheme(s) on '%s', %d steps, %d process(es)", len(jobs),
             scenario.name, scenario.run.steps, n)
    done: dict[str, dict[str, float]] = {}

    def finished(scheme: str, kpis: dict[str, float]) -> None:
        done[scheme] = kpis
        log.info("[%d/%d] %s done after %.0f s: %s", len(done), len(jobs), scheme,
                 time.perf_counter() - t0, cost_line(kpis))

    if n > 1:
        with fresh_processes(n) as pool:
            futures = [pool.submit(_one, job) for job in longest_first(jobs)]
            for fut in as_completed(futures):
                finished(*fut.result())
    else:
        for job in jobs:
            log.info("[%d/%d] %s: running", len(done) + 1, len(jobs), job[1])
            finished(*_one(job))
    log.info("compare: all %d scheme(s) done in %.0f s", len(jobs), time.perf_counter() - t0)
    rows = [{"scheme": s, **done[s]} for s in schemes]
    write_summary(rows, out_dir / "summary.csv")
    return rows


def write_summary(rows: list[dict], path: Path) -> None:
    columns = ["scheme", *KPI_UNITS]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def format_table(rows: list[dict]) -> str:
    """A plain-text table of the main KPIs, one line per scheme."""
    cols = [("scheme", "scheme", "{}"), ("social_cost_eur", "social EUR", "{:,.0f}"),
            ("resource_cost_eur", "resource EUR", "{:,.0f}"),
            ("unserved_value_eur", "unserved EUR", "{:,.0f}"),
            ("tso_paid_eur", "TSO paid", "{:,.0f}"), ("dso_paid_eur", "DSO paid", "{:,.0f}"),
            ("brp_paid_eur", "BRP paid", "{:,.0f}"),
            ("unserved_imbalance_mwh", "imbalance MWh", "{:,.1f}"),
            ("activated_mwh", "activated MWh", "{:,.1f}"),
            ("cross_level_mwh", "cross-level MWh", "{:,.1f}"), ("conflicts", "conflicts", "{}")]
    cells = [[h for _, h, _ in cols]]
    for r in rows:
        cells.append([fmt.format(r.get(k, "")) for k, _, fmt in cols])
    width = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, width, strict=True)))
                     for row in cells)

