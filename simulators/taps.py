"""The DSOs' on-load tap changers at the HV/MV interface transformers.

Each step, before the market and again after it, the same in every scheme, a DSO moves the
taps of each HV/MV substation while its MV busbar is farther than the deadband from the
target voltage, by at most `max_moves` positions per step and within the tap range (a
deadband narrower than 0.6 tap steps is widened to that, against hunting). Parallel transformers of
one substation (one MV busbar) move together.

A tap change is applied without rebuilding the admittance matrix: pandapower puts the ideal
transformer of the tap at the HV (from) side of the transformer branch, and in the D net the
HV bus of each interface transformer is a slack bus that feeds only that transformer. Changing
the ratio from t0 (set-up) to t is then exactly the same as scaling that slack's voltage by
t0 / t (tap on the HV side; t / t0 on the LV side): the MV side sees the same voltages and
the same power flows (`tests/test_taps.py` checks it against `pandapower.runpp`). Only the
current on the HV side of the transformer, computed from the scaled voltage, differs by the
same ratio; the LV side's current, and so its loading, is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A deadband narrower than this share of a tap step is widened to it: with less than half a
#: step, one move can carry the busbar across the whole band and the taps would hunt.
HUNTING_GUARD = 0.6


@dataclass(frozen=True)
class TapSettings:
    """The tap control of the scenario (`[control]`, `grid.mv_busbar_pu`)."""

    target_pu: float
    deadband_pu: float
    max_moves: int


class TapChangers:
    """The tap changers of all interface transformers of one level's D net.

    `model` is the level's `GridModel`; `interfaces` are (name, trafo index, slack position in
    the model's `ref`) triples; the transformer data come from its net (`net.trafo`), the taps
    as set at set-up. Transformers whose MV busbars are one bus of the power flow (closed
    couplers) or whose HV buses are one slack form one substation and move together.
    """

    def __init__(self, model, interfaces: list[tuple[str, int, int]],
                 settings: TapSettings) -> None:
        self.settings = settings
        self.names = [n for n, _, _ in interfaces]
        net = model.net
        tr = net.trafo.loc[[t for _, t, _ in interfaces]]
        self.slack = np.array([s for _, _, s in interfaces], dtype=np.int64)
        lv = tr.lv_bus.to_numpy()
        # one substation per MV busbar (bus-bar couplers closed: one bus of the power flow);
        # its transformers move together
        node = np.asarray(net._pd2ppc_lookups["bus"][lv], dtype=np.int64)
        self.sub = _groups(node, self.slack)
        self.busbar = np.asarray(net.bus.index.get_indexer(lv), dtype=np.int64)  # per trafo
        self.step = tr.tap_step_percent.fillna(0.0).to_numpy(float) / 100.0
        self.neutral = tr.tap_neutral.fillna(0.0).to_numpy(float)
        self.pos0 = tr.tap_pos.fillna(0.0).to_numpy(float)
        self.hv = tr.tap_side.fillna("hv").to_numpy() == "hv"
        n_sub = int(self.sub.max(initial=-1)) + 1
        first = np.array([np.flatnonzero(self.sub == s)[0] for s in range(n_sub)],
                         dtype=np.int64)
        self.first = first
        self.members = [np.flatnonzero(self.sub == s) for s in range(n_sub)]  # per substation
        self._sub_start = np.r_[0, np.cumsum([len(m) for m in self.members])[:-1]].astype(
            np.int64)  # where each substation's transformers start in substation order
        # the substation's range of moves: what all its transformers allow
        lo = tr.tap_min.fillna(0.0).to_numpy(float) - self.pos0
        hi = tr.tap_max.fillna(0.0).to_numpy(float) - self.pos0
        self.move_min = np.array([lo[self.sub == s].max() for s in range(n_sub)])
        self.move_max = np.array([hi[self.sub == s].min() for s in range(n_sub)])
        self.controllable = self.step[first] > 0
        # MV voltage change per tap move (pu per unit): a tap up on the HV side lowers it; a
        # substation's slack scale is that of its first transformer
        self.sign = np.where(self.hv[first], -1.0, 1.0)
        self.step_sub = self.step[first]
        self.moved = np.zeros(n_sub)  # tap moves since set-up, per substation
        self.left = np.zeros(n_sub, dtype=np.int64)

    def new_step(self) -> None:
        """A new step: every substation may move `max_moves` positions again."""
        self.left[:] = self.settings.max_moves

    def position(self) -> np.ndarray:
        """Tap position of every interface transformer."""
        return self.pos0 + self.moved[self.sub]

    def factor(self) -> np.ndarray:
        """Scale of each interface slack voltage that stands for the taps' moves (a slack
        shared by several transformers takes the scale of the substation's first one)."""
        t0 = 1.0 + (self.pos0 - self.neutral) * self.step
        t = 1.0 + (self.position() - self.neutral) * self.step
        own = np.where(self.hv, t0 / t, t / t0)
        return own[self.first[self.sub]]

    def control(self, vm_pu: np.ndarray) -> bool:
        """Move the taps for the MV busbar voltages `vm_pu` (the D net's bus order); True if
        any tap moved. The number of moves is what brings the busbar back inside the deadband
        at one step's change per move (MV voltage moves about one to one with the ratio)."""
        s = self.settings
        dev_t = np.nan_to_num(vm_pu[self.busbar] - s.target_pu, nan=0.0)
        # per substation: the busbar farthest from the target (the first of equals, as
        # argmax): transformers by substation, then farthest first, then in their order
        order = np.lexsort((np.arange(len(dev_t)), -np.abs(dev_t), self.sub))
        worst = order[self._sub_start]
        v = vm_pu[self.busbar[worst]]
        dev = v - s.target_pu
        band = np.maximum(s.deadband_pu, HUNTING_GUARD * self.step_sub)
        need = np.ceil(np.maximum(np.abs(dev) - band, 0.0)
                       / np.where(self.step_sub > 0, self.step_sub, np.inf) - 1e-9)
        need = np.where(np.isfinite(v) & self.controllable, need, 0.0)
        # voltage too high: move so that the MV voltage falls (sign: MV change per move)
        move = -np.sign(dev) * self.sign * np.minimum(need, self.left)
        new = np.clip(self.moved + move, self.move_min, self.move_max)
        changed = new != self.moved
        self.left -= np.abs(new - self.moved).astype(np.int64)
        self.moved = new
        return bool(changed.any())


def _groups(node: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Substation of each transformer: transformers sharing an MV bus or an HV slack are one
    (connected components), numbered in order of first appearance."""
    n = len(node)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in (node, slack):
        seen: dict[int, int] = {}
        for i, value in enumerate(key.tolist()):
            if value in seen:
                parent[root(i)] = root(seen[value])
            else:
                seen[value] = i
    roots = [root(i) for i in range(n)]
    order = {r: j for j, r in enumerate(dict.fromkeys(roots))}
    return np.array([order[r] for r in roots], dtype=np.int64)
