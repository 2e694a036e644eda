"""Flexible resources: which assets offer what, at what price, and what an activation does.

A resource is the flexible part of all assets of one kind at one bus of one grid (an
aggregator's portfolio at that connection point). Each resource owns one bid slot per direction
it can offer:

- RES curtailment (wind, pv, other_res): down only, up to `share` of the forecast output;
- flexible load: up (consume less) and down (consume more), up to `share` of the forecast load;
- storage: up (discharge more / charge less) and down, up to `share` of the power rating and
  within what the state of charge allows over one step;
- the TSO's balancing ladder at the EHV link: `blocks` up and down blocks of `block_mw`, with
  prices rising by `price_step` per block.

Availability is computed from forecasts (what a provider knows when it bids) and from state
(state of charge). An activation is spread over the resource's assets in proportion to their
availability and returned as set-point changes per element table of each grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coordination.bid import BidBook
from scenarios.schema import Scenario


@dataclass
class GridAssets:
    """The assets of one grid with forecasts for the run window (steps x elements, MW)."""

    name: str
    level: str
    sgen_kind: np.ndarray  # (n_sgen,) kind of each sgen
    sgen_bus: np.ndarray
    load_bus: np.ndarray
    sto_bus: np.ndarray
    sto_rating: np.ndarray  # MW
    sto_e_min: np.ndarray  # MWh
    sto_e_max: np.ndarray
    sto_e0: np.ndarray
    fc_load: np.ndarray  # (steps, n_load) forecast p (consumption +)
    fc_sgen: np.ndarray  # (steps, n_sgen) forecast p (injection +)
    fc_sto: np.ndarray  # (steps, n_sto) forecast p (charging +)
    bus_name: dict[int, str]


@dataclass
class Setpoints:
    """Changes to the realised element set-points of one grid (pandapower signs)."""

    dp_load: np.ndarray
    dp_sgen: np.ndarray
    dp_sto: np.ndarray
    dp_balancing: float = 0.0


class Portfolio:
    """All flexible resources of a run, their bid slots and their state."""

    def __init__(self, scenario: Scenario, grids: list[GridAssets],
                 t_col: Callable[[str, int], int], balancing_t_col: int, step_h: float):
        """`t_col(grid, bus)` gives the PTDF column where a resource's injection shows in the
        T grid (a D grid's interface bus for its resources)."""
        self.scenario = scenario
        self.step_h = step_h
        self.grids = {g.name: g for g in grids}
        rows: list[dict] = []
        # per slot: (grid, table, element weights) to spread an activation
        self._members: list[tuple[str, str, np.ndarray]] = []
        self.slot_bus: list[int] = []
        flex = scenario.flexibility
        for g in grids:
            for kind in ("wind", "pv", "other_res"):
                for bus in np.unique(g.sgen_bus[g.sgen_kind == kind]):
                    idx = np.flatnonzero((g.sgen_kind == kind) & (g.sgen_bus == bus))
                    self._add(rows, g, kind, "sgen", idx, int(bus), t_col, (-1,), flex)
            for bus in np.unique(g.load_bus):
                idx = np.flatnonzero(g.load_bus == bus)
                self._add(rows, g, "load", "load", idx, int(bus), t_col, (1, -1), flex)
            for bus in np.unique(g.sto_bus):
                idx = np.flatnonzero(g.sto_bus == bus)
                self._add(rows, g, "storage", "storage", idx, int(bus), t_col, (1, -1), flex)
        ladder = flex.balancing
        t_grid = next(g.name for g in grids if g.level == "T")
        for direction, base in ((1, ladder.price_up), (-1, ladder.price_down)):
            for b in range(ladder.blocks):
                name = f"balancing:{'up' if direction > 0 else 'down'}{b + 1}"
                rows.append(dict(resource=name, kind="balancing", grid=t_grid, level="T",
                                 t_bus=balancing_t_col, direction=direction,
                                 mw=ladder.block_mw, price=base + b * ladder.price_step))
                self._members.append((t_grid, "balancing", np.zeros(0, dtype=np.int64)))
                self.slot_bus.append(-1)
        self.book = BidBook.from_rows(rows)
        self.slot_bus_arr = np.asarray(self.slot_bus, dtype=np.int64)
        self.soc = {g.name: g.sto_e0.astype(float).copy() for g in grids}

    def _add(self, rows, g: GridAssets, kind, table, idx, bus, t_col, directions, flex) -> None:
        offer = flex.offer(kind)
        if offer.share <= 0:
            return
        for d in directions:
            tag = "up" if d > 0 else "down"
            rows.append(dict(resource=f"{g.name}:{kind}@{g.bus_name[bus]}:{tag}", kind=kind,
                             grid=g.name, level=g.level, t_bus=t_col(g.name, bus),
                             direction=d, mw=0.0,
                             price=offer.price_up if d > 0 else offer.price_down))
            self._members.append((g.name, table, idx))
            self.slot_bus.append(bus)

    # --- each step ----------------------------------------------------------------------
    def offer(self, k: int) -> BidBook:
        """Update the book's offered MW for step k from forecasts and state of charge."""
        flex = self.scenario.flexibility
        mw = self.book.mw
        self._weights: list[np.ndarray | None] = [None] * len(mw)
        for s, (grid, table, idx) in enumerate(self._members):
            if table == "balancing":
                mw[s] = flex.balancing.block_mw
                continue
            g = self.grids[grid]
            d = self.book.direction[s]
            share = flex.offer(self.book.kind[s]).share
            if table == "sgen":
                w = np.maximum(g.fc_sgen[k, idx], 0.0) * share
            elif table == "load":
                w = np.maximum(g.fc_load[k, idx], 0.0) * share
            else:
                base = g.fc_sto[k, idx]
                rating = g.sto_rating[idx]
                soc = self.soc[grid][idx]
                if d > 0:  # discharge more: power down to -rating, energy above e_min
                    w = np.minimum(share * rating, base + rating)
                    w = np.minimum(w, (soc - g.sto_e_min[idx]) / self.step_h + base)
                else:
                    w = np.minimum(share * rating, rating - base)
                    w = np.minimum(w, (g.sto_e_max[idx] - soc) / self.step_h - base)
                w = np.maximum(w, 0.0)
            self._weights[s] = w
            mw[s] = float(w.sum())
        return self.book

    def neutral(self) -> dict[str, Setpoints]:
        """No change to any grid (the start of a step, before the markets clear)."""
        return {name: Setpoints(np.zeros(g.fc_load.shape[1]), np.zeros(g.fc_sgen.shape[1]),
                                np.zeros(g.fc_sto.shape[1])) for name, g in self.grids.items()}

    def activate(self, k: int, activated: np.ndarray) -> dict[str, Setpoints]:
        """Turn activated MW per slot into element set-point changes; update state of charge."""
        out = self.neutral()
        for s in np.flatnonzero(activated > 1e-9):
            grid, table, idx = self._members[s]
            x = float(activated[s]) * int(self.book.direction[s])  # + = more injection
            if table == "balancing":
                out[grid].dp_balancing += x
                continue
            w = self._weights[s]
            part = w / w.sum() if w is not None and w.sum() > 0 else np.full(len(idx), 1 / len(idx))
            if table == "sgen":
                out[grid].dp_sgen[idx] += x * part
            elif table == "load":
                out[grid].dp_load[idx] -= x * part
            else:
                out[grid].dp_sto[idx] -= x * part
        for name, g in self.grids.items():
            if len(g.sto_e0):
                charge = g.fc_sto[k] + out[name].dp_sto
                self.soc[name] = np.clip(self.soc[name] + charge * self.step_h,
                                         g.sto_e_min, g.sto_e_max)
        return out
