"""Run one scheme on one scenario and stream the results to an HDF5 file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tsodso import __version__
from tsodso.results.writer import GridLayout, ResultsWriter, RunMeta
from tsodso.scenarios.load import builtin_match, to_toml
from tsodso.scenarios.schema import Scenario
from tsodso.scenarios.world import RunContext, build_world, prepare
from tsodso.simulators.timing import Timing


def layout(ctx: RunContext) -> list[GridLayout]:
    out = []
    for g in ctx.grid_order:
        rt = ctx.levels[ctx.level[g]]
        sl = rt.grids[g]
        names = np.array(rt.model.branch_names, dtype=object)
        out.append(GridLayout(name=g, level=ctx.level[g],
                              bus=[str(b) for b in rt.model.net.bus.name.to_numpy()[sl.bus]],
                              branch=[str(b) for b in names[sl.branch]]))
    return out


def run(scenario: Scenario, scheme: str, out: Path, profile: bool = False,
        progress: bool = False) -> dict[str, float]:
    """Run the co-simulation; returns the KPIs. The file stays readable if the run stops early."""
    t0 = time.perf_counter()
    ctx = prepare(scenario, scheme)
    lim = scenario.limits
    cls = type(ctx.scheme)
    description = " ".join(t for t in (cls.description, cls.notes(scenario)) if t)
    meta = RunMeta(scheme=scheme, scenario=scenario.name, seed=scenario.run.seed,
                   start=scenario.run.start, step_s=scenario.run.step_s,
                   n_steps=scenario.run.steps, software_version=__version__,
                   scenario_toml=to_toml(scenario),
                   limits={"T": (lim.T.vm_min_pu, lim.T.vm_max_pu, lim.T.loading_max_percent),
                           "D": (lim.D.vm_min_pu, lim.D.vm_max_pu, lim.D.loading_max_percent)},
                   scheme_label=cls.label or scheme, scheme_short=cls.short or scheme,
                   scheme_description=description, scheme_counterfactual=cls.counterfactual,
                   scheme_balances_areas=cls.dso_balances_area, scheme_order=cls.order,
                   builtin=builtin_match(scenario))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = ResultsWriter(out, meta, layout(ctx), [(i.name, i.grid) for i in ctx.interfaces],
                           ctx.dso_grids)
    bar = tqdm(total=ctx.n_steps, disable=not progress, unit="step", desc=scheme)
    timing = Timing()
    try:
        world = build_world(ctx, writer, timing, on_step=bar.update)
        t1 = time.perf_counter()
        world.run(until=ctx.until, print_progress=False)
        t2 = time.perf_counter()
    except BaseException:
        bar.close()
        writer.close(complete=False)
        raise
    bar.close()
    spent = dict(timing.as_dict(), simulate_s=t2 - t1, setup_s=t1 - t0,
                 total_s=time.perf_counter() - t0) if profile else None
    return writer.close(complete=True, timing=spent)
