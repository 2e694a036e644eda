"""How the mosaik world steps: which simulator steps how often in a time step, and that the
coordinator sees the grids' final state of each stage (scenarios/world.py:build_world)."""

from __future__ import annotations

import collections

import pytest
from tsodso.simulators import coordinator, grid, providers, recorder

from tests.conftest import make_scenario
from tsodso.runner import run


def _count_steps(monkeypatch, tmp_path, scheme: str, steps: int = 6):
    """Steps per (simulator, time), which clearings activated something, and whether the
    coordinator cleared on the D grids' last reports of the loop."""
    counts: collections.Counter = collections.Counter()
    activated: dict[int, bool] = {}
    sent: dict[int, bool] = {}  # the clearing sent activations (anything activated at all)
    d_last: dict[str, object] = {}
    same_reports: list[bool] = []

    def counted(cls, name: str, key):
        original = getattr(cls, name)

        def step(self, time, inputs, max_advance):
            counts[(key(self), time)] += 1
            out = original(self, time, inputs, max_advance)
            if cls is grid.GridSim and self.level == "D":
                d_last.update(self.reports)  # the reports of its last solve
            return out
        monkeypatch.setattr(cls, name, step)

    counted(grid.GridSim, "step", lambda s: f"grid {s.level}")
    counted(providers.ProvidersSim, "step", lambda s: "providers")
    counted(coordinator.CoordinatorSim, "step", lambda s: "coordinator")
    counted(recorder.RecorderSim, "step", lambda s: "recorder")
    clear = coordinator.CoordinatorSim._clear

    def checked_clear(self, k, time):
        same_reports.append(all(self.reports[g] is rep for g, rep in d_last.items()))
        clear(self, k, time)
        activated[time] = "record" not in self.out  # recorded at once: nothing activated
        sent[time] = "activations" in self.out

    monkeypatch.setattr(coordinator.CoordinatorSim, "_clear", checked_clear)
    run(make_scenario(steps=steps), scheme, tmp_path / f"{scheme}.h5")
    return counts, activated, sent, same_reports


@pytest.mark.parametrize("scheme", ["none", "common"])
def test_coordinator_steps_once_per_stage(monkeypatch, tmp_path, scheme):
    counts, activated, sent, same_reports = _count_steps(monkeypatch, tmp_path, scheme)
    times = sorted(activated)
    assert len(times) == 6
    for t in times:
        # before the market, and after it only if the grids had to run again (and once more
        # at the start, where mosaik steps every hybrid simulator, with nothing to do)
        assert counts[("coordinator", t)] == (2 if activated[t] else 1) + (t == 0)
        assert counts[("recorder", t)] == 1
        # offers, and the activations if there were any (none: the providers settle the
        # step as "nothing activated" before the next offers)
        assert counts[("providers", t)] == 1 + sent[t]
        assert sent[t] or not activated[t]
        # the T-D loop iterates (at least twice before the market), the coordinator does not
        assert counts[("grid T", t)] > counts[("coordinator", t)] - (t == 0)
    assert any(activated.values()) == (scheme != "none")
    assert any(sent.values()) == (scheme != "none")
    # the clearing saw every D grid's report of the loop's last iteration
    assert same_reports and all(same_reports)


def test_one_entity_per_simulator():
    """Each grid simulator is one entity for its whole level: one connection per pair of
    simulators and attribute, however many D grids there are."""
    from tsodso.scenarios.world import build_world, prepare
    from tsodso.simulators.timing import Timing

    ctx = prepare(make_scenario(steps=2), "none")
    assert len(ctx.dso_grids) > 1
    world = build_world(ctx, writer=None, timing=Timing())
    try:
        graph = world.entity_graph
        assert sorted(graph.nodes) == ["Coordinator-0.coordinator", "Grid-0.T", "Grid-1.D",
                                       "Providers-0.providers", "Recorder-0.recorder"]
        assert sorted(tuple(sorted(e)) for e in graph.edges) == sorted([
            ("Coordinator-0.coordinator", "Providers-0.providers"),  # bids, activations
            ("Coordinator-0.coordinator", "Grid-0.T"),  # report
            ("Coordinator-0.coordinator", "Grid-1.D"),  # d_report
            ("Coordinator-0.coordinator", "Recorder-0.recorder"),  # record
            ("Grid-0.T", "Providers-0.providers"),  # setpoints
            ("Grid-1.D", "Providers-0.providers"),  # setpoints
            ("Grid-0.T", "Grid-1.D")])  # interface_s, interface_v
    finally:
        world.shutdown()
