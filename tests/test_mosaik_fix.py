"""mosaik 3.6 keeps the futures of cancelled waits; our patch keeps the per-step cost flat.
The faster tiered-time arithmetic gives the stock results."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mosaik import scheduler
from mosaik.progress import Progress
from mosaik.tiered_time import MinimalDurations, TieredDuration, TieredTime
from tsodso.simulators import mosaik_fix

from tests.conftest import make_scenario
from tsodso.runner import run


def _max_waiting(monkeypatch, tmp_path, steps: int, patched: bool) -> int:
    """Most futures any Progress held at once during a `tiny` run of `steps` steps."""
    most = [0]
    base = mosaik_fix._set if patched else mosaik_fix._original_set

    def recording_set(self, time):
        most[0] = max(most[0], len(self._futures))
        base(self, time)

    monkeypatch.setattr(mosaik_fix, "apply", lambda: False)
    monkeypatch.setattr(Progress, "set", recording_set)
    run(make_scenario(steps=steps), "none", tmp_path / f"{steps}-{patched}.h5")
    return most[0]


def test_guard_matches_installed_mosaik():
    assert mosaik_fix.needed() == version("mosaik").startswith("3.6.")


@pytest.mark.skipif(not mosaik_fix.needed(), reason="installed mosaik does not have the defect")
def test_cancelled_waits_are_dropped(monkeypatch, tmp_path):
    stock_30 = _max_waiting(monkeypatch, tmp_path, 30, patched=False)
    stock_60 = _max_waiting(monkeypatch, tmp_path, 60, patched=False)
    assert stock_60 > stock_30 > 30, "the stock defect is no longer reproducible"
    assert _max_waiting(monkeypatch, tmp_path, 60, patched=True) <= 5


def test_apply_installs_the_patches(monkeypatch):
    for owner, name in ((Progress, "set"), *((o, n) for n, (o, _) in mosaik_fix.ORIGINAL.items())):
        monkeypatch.setattr(owner, name, getattr(owner, name))  # restored after the test
    mosaik_fix.restore()
    assert Progress.set is mosaik_fix._original_set
    assert mosaik_fix.apply() == mosaik_fix.needed()
    if mosaik_fix.needed():
        assert Progress.set is mosaik_fix._set
        assert TieredTime.__add__ is mosaik_fix._time_add
        assert MinimalDurations.earliest_sum is mosaik_fix._earliest_sum
        assert Progress._triggered_time is mosaik_fix._triggered_time
        assert scheduler.advance_progress is mosaik_fix._advance_progress
        assert scheduler.prune_dataflow_cache is mosaik_fix._prune_dataflow_cache
        assert scheduler.wait_for_dependencies is mosaik_fix._wait_for_dependencies


_tier = st.integers(min_value=-3, max_value=3)


@st.composite
def _time_and_durations(draw):
    """A tiered time and durations that can be added to it (pre_length = its length)."""
    n = draw(st.integers(1, 3))
    time = TieredTime(*draw(st.lists(_tier, min_size=n, max_size=n)))
    m = draw(st.integers(1, 3))
    durations = []
    for _ in range(draw(st.integers(1, 3))):
        cutoff = draw(st.integers(1, min(n, m)))
        tiers = draw(st.lists(_tier, min_size=m, max_size=m))
        durations.append(TieredDuration(*tiers, cutoff=cutoff, pre_length=n))
    other = TieredTime(*draw(st.lists(_tier, min_size=m, max_size=m)))
    return time, durations, other


def _results(time: TieredTime, durations: list[TieredDuration], other: TieredTime) -> list:
    """Every patched operation on these values, with whatever methods are installed."""
    minimal = MinimalDurations()
    for d in durations:
        minimal.insert(d)
    sums = [time + d for d in durations]
    progress = Progress(time)
    waits = [progress._triggered_time((other, d, passed)) for d in durations
             for passed in (True, False)]
    return [[s.tiers for s in sums], [type(s) for s in sums],
            [None if w is None else (type(w), w.tiers) for w in waits],
            [(s < other, s <= other, s > other, s >= other, s == other) for s in sums],
            minimal.earliest_sum(time).tiers, [s.tiers for s in sorted(sums)]]


@settings(max_examples=300, deadline=None)
@given(_time_and_durations())
def test_fast_arithmetic_equals_stock(case):
    try:
        mosaik_fix.restore()
        stock = _results(*case)
        mosaik_fix.apply()
        assert _results(*case) == stock
    finally:
        mosaik_fix.apply()


class _Bar:
    """The part of a tqdm bar `advance_progress` uses."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, by: int) -> None:
        self.n += by


class _Ancestor:
    """A simulator that triggers the one advanced (a dictionary key, as SimRunners are)."""

    def __init__(self, next_steps: list[TieredTime]) -> None:
        self.next_steps = next_steps


@st.composite
def _scheduler_state(draw):
    """A simulator in a group (two tiers) with triggering ancestors, and the world's end."""
    def time():
        return TieredTime(*draw(st.lists(_tier, min_size=2, max_size=2)))

    ancestors = {}
    for _ in range(draw(st.integers(0, 3))):
        minimal = MinimalDurations()
        for _ in range(draw(st.integers(1, 2))):
            minimal.insert(TieredDuration(*draw(st.lists(_tier, min_size=2, max_size=2)),
                                          cutoff=draw(st.integers(1, 2)), pre_length=2))
        pre = _Ancestor([time()] if draw(st.booleans()) else [])
        ancestors[pre] = minimal
    return dict(ancestors=ancestors, next_steps=[time()] if draw(st.booleans()) else [],
                current=time() if draw(st.booleans()) else None,
                until=draw(st.integers(-3, 5)))


def _progress_after(state, advance) -> tuple:
    sim = SimpleNamespace(triggering_ancestors=state["ancestors"], next_steps=state["next_steps"],
                          current_step=state["current"], progress=Progress(TieredTime(-99, 0)),
                          from_world_time=TieredDuration(0, 0, cutoff=1, pre_length=1),
                          tqdm=_Bar())
    advance(sim, SimpleNamespace(rt_factor=None, until=state["until"]))
    return sim.progress.time.tiers, sim.tqdm.n


@settings(max_examples=300, deadline=None)
@given(_scheduler_state())
def test_fast_advance_progress_equals_stock(state):
    stock = mosaik_fix.ORIGINAL["advance_progress"][1]
    assert _progress_after(state, mosaik_fix._advance_progress) == _progress_after(state, stock)


class _World:
    """The part of a mosaik world `prune_dataflow_cache` uses: simulators with output caches."""

    def __init__(self, sims: dict) -> None:
        self.use_cache = True
        self.sims = sims

    def _get_sim_runners(self) -> dict:
        return self.sims


@st.composite
def _cache_histories(draw):
    """Simulator steps as mosaik makes them: a simulator's last step moves forward and its
    output is cached at that step or later; after each, the cache is pruned."""
    n = draw(st.integers(1, 4))
    moves = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 2),
                                    st.integers(0, 2), st.booleans()), max_size=40))
    return n, moves


def _caches_after(n: int, moves: list, prune) -> list:
    """Every simulator's cached output times after each pruning."""
    sims = {i: SimpleNamespace(last_step=TieredTime(-1, 0), outputs={}) for i in range(n)}
    world = _World(sims)
    seen = []
    for i, forward, later, outputs in moves:
        sim = sims[i]
        sim.last_step = TieredTime(sim.last_step.time + forward, 0)
        if outputs:  # a simulator without outputs keeps an empty cache
            sim.outputs[sim.last_step.time + later] = {"eid": {"attr": i}}
        prune(world)
        seen.append([sorted(s.outputs) for s in sims.values()])
    return seen


@settings(max_examples=300, deadline=None)
@given(_cache_histories())
def test_pruning_only_when_the_earliest_step_moved_equals_stock(history):
    stock = mosaik_fix.ORIGINAL["prune_dataflow_cache"][1]
    assert _caches_after(*history, mosaik_fix._prune_dataflow_cache) == \
        _caches_after(*history, stock)


class _Runner:
    """The part of a SimRunner `wait_for_dependencies` reads (a dictionary key, as they are)."""

    def __init__(self, progress: Progress, next_steps: list | None = None) -> None:
        self.progress = progress
        self.next_steps = next_steps or []
        self.input_delays: dict = {}
        self.successors_to_wait_for: dict = {}
        self.successors: dict = {}


@st.composite
def _dependency_state(draw):
    """A simulator about to step (two tiers), its input providers with their minimal delays
    and its successors, each at some progress."""
    def time():
        return TieredTime(*draw(st.lists(st.integers(0, 3), min_size=2, max_size=2)))

    def duration(cutoff_max: int = 2):
        return TieredDuration(*draw(st.lists(st.integers(0, 1), min_size=2, max_size=2)),
                              cutoff=draw(st.integers(1, cutoff_max)), pre_length=2)

    sim = _Runner(Progress(TieredTime(0, 0)), [time()])
    for _ in range(draw(st.integers(0, 3))):
        delays = MinimalDurations()
        for _ in range(draw(st.integers(1, 2))):
            delays.insert(duration())
        sim.input_delays[_Runner(Progress(time()))] = delays
    for table in (sim.successors_to_wait_for, sim.successors):
        for _ in range(draw(st.integers(0, 2))):
            table[_Runner(Progress(time()))] = duration()
    return sim, draw(st.booleans())


def _over_at_once(wait, sim, lazy: bool) -> bool:
    """Whether `wait(sim, lazy)` ends within a few event-loop rounds, nothing progressing."""
    async def probe() -> bool:
        task = asyncio.ensure_future(wait(sim, lazy))
        for _ in range(10):
            await asyncio.sleep(0)
        done = task.done()
        task.cancel()
        return done

    return asyncio.run(probe())


@settings(max_examples=200, deadline=None)
@given(_dependency_state())
def test_dependencies_met_exactly_when_the_stock_wait_ends_at_once(state):
    sim, lazy = state
    stock = mosaik_fix.ORIGINAL["wait_for_dependencies"][1]
    met = _over_at_once(stock, sim, lazy)
    assert mosaik_fix._dependencies_met(sim, lazy) == met
    assert _over_at_once(mosaik_fix._wait_for_dependencies, sim, lazy) == met
