"""Run one scheme on one scenario and stream the results to an HDF5 file; resume a run that
was interrupted; check output paths before anything is computed or written."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tsodso import __version__
from tsodso.allocator import fix_mmap_threshold
from tsodso.results.integrity import is_live
from tsodso.results.read import check_format, open_results, root_meta
from tsodso.results.writer import GridLayout, ResultsFileError, ResultsWriter, RunMeta
from tsodso.scenarios.load import builtin_match, parse, to_toml
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


#: Longest default output file stem taken from a scenario name.
_STEM_MAX = 100


def default_output(name: str, scheme: str) -> Path:
    """``<name>-<scheme>.h5`` in the working directory, with the scenario name reduced to
    letters, digits, '_', '-' and '.' (never a directory part, never a hidden file)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{name}-{scheme}").lstrip(".")[:_STEM_MAX]
    return Path(f"{stem or 'run'}.h5")


def check_output(out: Path, overwrite: bool = False, keep: tuple[Path, ...] = ()) -> Path:
    """Check that ``out`` can be a new results file; ResultsFileError (one line) if not.

    Refused: an empty name, a directory or anything but a regular file, a file among ``keep``
    (the scenario file), an existing file unless ``overwrite``, a folder that cannot be made
    or written. Creates the missing parent folders."""
    if not str(out) or out.name in ("", ".", ".."):
        raise ResultsFileError(f"{str(out)!r}: not a file name")
    try:
        info = os.stat(out)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ResultsFileError(f"{out}: {exc.strerror or exc}") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise ResultsFileError(f"{out}: exists and is not a regular file")
        for k in keep:
            try:
                if k.exists() and os.path.samefile(k, out):
                    raise ResultsFileError(f"{out}: is the scenario file; choose another --out")
            except OSError:
                continue
        if not overwrite:
            raise ResultsFileError(f"{out}: exists; use --overwrite to replace it "
                                   "(or --resume to continue an interrupted run)")
        if is_live(out):  # say so now, not after the set-up
            raise ResultsFileError(f"{out}: in use by another process (another run is "
                                   "writing it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsFileError(f"{out.parent}: cannot create the folder: "
                               f"{exc.strerror or exc}") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ResultsFileError(f"{out.parent}: folder is not writable")
    if len(out.name.encode()) > 255:
        raise ResultsFileError(f"{str(out)[:60]}...: file name too long")
    return out


def resume_source(path: Path) -> tuple[Scenario, str]:
    """The scenario and scheme of the run in results file ``path`` (to resume it)."""
    with open_results(path) as f:
        check_format(f, path)
        meta = root_meta(f)
    if meta["complete"]:
        raise ResultsFileError(f"{path}: the run is complete; nothing to resume")
    return parse(str(meta["scenario_toml"]), f"{path} (scenario stored in the file)"), \
        str(meta["scheme"])


def run(scenario: Scenario, scheme: str, out: Path, profile: bool = False,
        progress: bool = False, resume: bool = False) -> dict[str, float]:
    """Run the co-simulation; returns the KPIs. The file stays readable if the run stops early.

    ``resume=True`` continues the interrupted run in ``out``: the run is replayed from its
    first step (state of charge and forecasts then are what they were), the steps the file
    already holds are checked against the replay instead of written, the rest are appended.
    """
    t0 = time.perf_counter()
    fix_mmap_threshold()  # large temporaries go back to the OS: a long run's memory stays flat
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
                   scheme_operator=cls.operator,
                   builtin=builtin_match(scenario))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = ResultsWriter(out, meta, layout(ctx), [(i.name, i.grid) for i in ctx.interfaces],
                           ctx.dso_grids, resume=resume)
    bar = tqdm(total=ctx.n_steps, disable=not progress, unit="step", desc=scheme)
    timing = Timing()
    try:
        world = build_world(ctx, writer, timing, on_step=bar.update)
        t1 = time.perf_counter()
        # eager stepping: a simulator does not wait for its successors to catch up before its
        # next step (the data flow already keeps them in step; only the recorder may lag)
        world.run(until=ctx.until, print_progress=False, lazy_stepping=False)
        t2 = time.perf_counter()
    except BaseException:
        bar.close()
        try:
            with _signals_held():
                writer.close(complete=False)
        except Exception:  # the run's own error is the one to report
            pass
        raise
    bar.close()
    spent = dict(timing.as_dict(), simulate_s=t2 - t1, setup_s=t1 - t0,
                 total_s=time.perf_counter() - t0) if profile else None
    with _signals_held():  # a Ctrl-C or SIGTERM now waits until the file is finished
        return writer.close(complete=True, timing=spent)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the results file is finished (KPIs, flags), so that an
    interruption arriving then cannot leave it half closed; they are delivered afterwards."""
    held = {signal.SIGINT, signal.SIGTERM}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
