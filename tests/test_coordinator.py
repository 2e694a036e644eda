"""The coordinator's bookkeeping of a step's activations, against hand-computed sums and the
per-element numpy loop it replaced."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from tsodso.core.records import Activation
from tsodso.simulators.coordinator import CoordinatorSim


def _act(resource: str, level: str, buyer: str, direction: int, mw: float) -> Activation:
    return Activation(resource, "load", "MV1" if level == "D" else "HV1", level, buyer,
                      direction, mw, 50.0, 50.0 * mw * 0.25, 40.0)


def _coordinator(resources: list[str]) -> CoordinatorSim:
    sim = CoordinatorSim()
    sim.book = resources  # only its length is read
    sim.slot_of = {r: i for i, r in enumerate(resources)}
    return sim


def _numpy_loop(sim: CoordinatorSim, acts: list[Activation]) -> tuple[np.ndarray, np.ndarray]:
    """The code `_tso_d` replaced: numpy element updates, one activation at a time."""
    mw, net = np.zeros(len(sim.book)), np.zeros(len(sim.book))
    for a in acts:
        if a.buyer == "TSO" and a.level == "D":
            i = sim.slot_of[a.resource]
            mw[i] += a.mw
            net[i] += a.direction * a.mw
    return mw, net


def test_tso_d_sums_only_the_tsos_d_activations_per_slot():
    sim = _coordinator(["d1:up", "d1:down", "d2:up", "t1:up", "d3:up"])
    acts = [_act("d1:up", "D", "TSO", 1, 2.0), _act("t1:up", "T", "TSO", 1, 7.0),
            _act("d1:down", "D", "TSO", -1, 0.5), _act("d2:up", "D", "DSO:MV1", 1, 3.0),
            _act("d1:up", "D", "TSO", 1, 0.25), _act("d3:up", "D", "BRP:1", 1, 1.0)]
    mw, net = sim._tso_d(SimpleNamespace(activations=acts))
    assert mw.tolist() == [2.25, 0.5, 0.0, 0.0, 0.0]
    assert net.tolist() == [2.25, -0.5, 0.0, 0.0, 0.0]
    assert mw.dtype == net.dtype == np.float64


def test_tso_d_equals_the_numpy_loop_bit_for_bit():
    rng = np.random.default_rng(7)
    names = [f"r{i}:{d}" for i in range(40) for d in ("up", "down")]
    sim = _coordinator(names)
    for n in (0, 1, 30, 300):  # no activation at all, and slots activated many times
        acts = [_act(names[j], "DT"[int(j % 3 == 0)], ("TSO", "DSO:MV1", "BRP:2")[j % 5 % 3],
                     1 if names[j].endswith("up") else -1, float(rng.uniform(1e-6, 30.0)))
                for j in rng.integers(0, len(names), n)]
        got = sim._tso_d(SimpleNamespace(activations=acts))
        want = _numpy_loop(sim, acts)
        assert [a.tobytes() for a in got] == [a.tobytes() for a in want]
