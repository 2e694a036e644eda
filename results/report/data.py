"""What the report knows of its results files: one ``RunData`` per file, read through the one
reader (``results.read``), and the ``ReportData`` every section is built from (the runs plus
the quantities derived from them: ranking, cross-level purchases, conflict statistics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np
from tsodso.core.vocabulary import DSO_PREFIX, TSO
from tsodso.results.kpis import read_kpis
from tsodso.results.read import (
    candidate_files,
    check_format,
    grid_limits,
    grid_slabs,
    meta_of,
    open_results,
    read_costs,
    read_interfaces,
    read_table,
    run_order,
    step_times,
    violations,
)

#: Distributions of voltages and loadings use at most this many steps (evenly spaced).
MAX_SAMPLE_STEPS = 960
#: Totals closer than this (EUR) count as a tie in the ranking.
TIE_EUR = 0.5


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
class RunData:
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
    events: dict = field(default_factory=dict)  # event kind -> steps' count

    @property
    def counterfactual(self) -> bool:
        """True for the no-coordination baseline the other schemes are measured against."""
        return bool(self.meta["scheme_counterfactual"])

    @property
    def balances_areas(self) -> bool:
        """True if the DSOs keep their interface on its agreed schedule in this scheme."""
        return bool(self.meta["scheme_balances_areas"])


def _grid_stats(f: h5py.File, n: int, stride: int) -> dict[str, LevelStats]:
    """Violations, extremes and sampled values of every grid, by level."""
    levels: dict[str, LevelStats] = {}
    for name, g in f["grids"].items():
        lim = grid_limits(g)
        st = levels.setdefault(lim.level, LevelStats())
        st.limits.add((lim.vm_min_pu, lim.vm_max_pu, lim.loading_max_percent))
        volt = over = 0
        for r0, vm, ld in grid_slabs(g, n):
            v, o = violations(vm, ld, lim)
            volt += v
            over += o
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


def read_run(path: Path) -> RunData:
    """Read one results file into a `RunData` (only the steps written count)."""
    with open_results(path) as f:
        check_format(f, path)
        meta = meta_of(f)
        n = int(meta["steps_written"])
        step_s = int(meta["step_s"])
        stride = max(1, math.ceil(n / MAX_SAMPLE_STEPS))
        kpis = read_kpis(f)
        costs = read_costs(f, n)
        interfaces = read_interfaces(f, n)
        levels = _grid_stats(f, n, stride)
        # resource names are not needed here
        act = read_table(f, "activations", n, columns=("step", "kind", "grid", "level", "buyer",
                                                       "direction", "mw", "price", "cost"))
        con = read_table(f, "conflicts", n)
        kinds, counts = np.unique(read_table(f, "events", n, columns=("kind",))["kind"],
                                  return_counts=True)
    scheme = str(meta["scheme"])
    return RunData(path=Path(path), key=scheme, scheme=scheme, meta=meta, kpis=kpis, n=n,
                   step_h=step_s / 3600.0, times=step_times(meta["start"], step_s, n),
                   costs=costs.parts, dso_grid=costs.dso_grid, dso_by_grid=costs.dso_by_grid,
                   act=act, con=con, if_name=interfaces.name, if_grid=interfaces.grid,
                   if_p=interfaces.p_mw, levels=levels, sample_stride=stride,
                   events={str(k): int(c) for k, c in zip(kinds, counts, strict=True)})


def read_runs(source: Path) -> tuple[list[RunData], list[str]]:
    """All readable runs of ``source`` in display order, and notes about skipped files."""
    runs, notes = [], []
    for path in candidate_files(source):
        try:
            runs.append(read_run(path))
        except (OSError, ValueError, KeyError) as exc:
            notes.append(f"{path.name} was skipped: {exc}")
    runs = [runs[i] for i in run_order(source, [r.meta for r in runs])]
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.scheme] = seen.get(r.scheme, 0) + 1
    for r in runs:
        if seen[r.scheme] > 1:
            r.key = f"{r.scheme} ({r.path.stem})"
    return runs, notes


# -- derived quantities -------------------------------------------------------------------


def _per_step(run: RunData, table: dict, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
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


def cross_level(run: RunData) -> Cross:
    """What the TSO bought from D resources and the DSOs from T resources, in one run."""
    a = run.act
    buyer = a["buyer"].astype(str)
    level = a["level"].astype(str)
    grid = a["grid"].astype(str)
    mwh = np.abs(a["mw"].astype(float)) * run.step_h
    cost = a["cost"].astype(float)
    is_dso = np.char.startswith(buyer, DSO_PREFIX) if buyer.size else np.zeros(0, bool)
    tso_d = (buyer == TSO) & (level == "D")
    dso_t = is_dso & (level == "T")
    own = is_dso & (level == "D")
    signed = a["direction"].astype(float) * mwh
    where = np.where(tso_d, grid, np.char.replace(buyer, DSO_PREFIX, "", count=1)
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


def conflict_stats(run: RunData) -> tuple[dict, dict]:
    """(kind -> (count, MWh), grid -> (count, MWh)) of one run."""
    c = run.con
    kinds, grids = c["kind"].astype(str), c["grid"].astype(str)
    mwh = np.abs(c["mw"].astype(float)) * run.step_h
    by_kind = {k: (int(np.sum(kinds == k)), float(mwh[kinds == k].sum()))
               for k in dict.fromkeys(kinds)}
    by_grid = {g: (int(np.sum(grids == g)), float(mwh[grids == g].sum()))
               for g in dict.fromkeys(grids)}
    return by_kind, by_grid


def ranking(runs: Sequence[RunData]) -> list[tuple[int, RunData, float, float | None]]:
    """(rank, run, EUR above the cheapest, % above the cheapest) by social cost, cheapest first.

    The sort is stable (equal totals keep the file order); totals within ``TIE_EUR`` share
    a rank."""
    ordered = sorted(runs, key=lambda r: r.kpis["social_cost_eur"])
    if not ordered:
        return []
    best = ordered[0].kpis["social_cost_eur"]
    out = []
    for r in ordered:
        total = r.kpis["social_cost_eur"]
        rank = 1 + sum(1 for o in ordered if o.kpis["social_cost_eur"] < total - TIE_EUR)
        diff = total - best
        pct = diff / abs(best) * 100.0 if abs(best) > 1e-9 else None
        out.append((rank, r, diff, pct))
    return out


@dataclass
class ReportData:
    """Everything a section is built from: the runs (display order), where they came from,
    and warnings for the page header (sections may add to them)."""

    runs: list[RunData]
    source: Path
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def ranked(self) -> list[tuple[int, RunData, float, float | None]]:
        """``ranking`` of the runs."""
        return ranking(self.runs)

    @cached_property
    def crosses(self) -> dict[str, Cross]:
        """Run key -> ``cross_level``."""
        return {r.key: cross_level(r) for r in self.runs}

    @cached_property
    def conflicts(self) -> dict[str, tuple[dict, dict]]:
        """Run key -> ``conflict_stats``."""
        return {r.key: conflict_stats(r) for r in self.runs}

    @property
    def coordinated(self) -> list[RunData]:
        """The runs of coordination schemes (not the counterfactual), cheapest first."""
        return [r for _, r, _, _ in self.ranked if not r.counterfactual]

    @property
    def counterfactual(self) -> RunData | None:
        """The run without coordination, if the report has one."""
        return next((r for r in self.runs if r.counterfactual), None)
