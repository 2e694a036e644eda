"""Flexible resources: which assets offer what, at what price, and what an activation does.

A resource is the flexible part of all assets of one kind at one bus of one grid (an
aggregator's portfolio at that connection point). Each resource owns one bid slot per direction
it can offer:

- RES curtailment (wind, pv, other_res): down only, up to `share` of the forecast output;
- flexible load (heat pumps, other load): up (consume less) and down (consume more), up to
  `share` of the forecast load; the energy is paid back over the kind's `payback_steps`
  following steps (`simulators/rebound.py`);
- storage: up (discharge more / charge less) and down, up to `share` of the power rating and
  within what the state of charge allows over one step (with efficiency), priced from the state
  of charge (`simulators/storage.py`);
- the TSO's balancing ladder at the EHV link: `blocks` up and down blocks of `block_mw`, with
  prices rising by `price_step` per block.

Availability is computed from forecasts (what a provider knows when it bids) and from state
(state of charge, pending payback). Before any market the providers correct their own schedule:
a storage schedule is cut to what the state of charge allows, and due payback is added to the
loads; these corrections are part of every set-point message of the step. An activation is
spread over the resource's assets in proportion to their availability and returned as set-point
changes per element table of each grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tsodso.coordination.bid import BidBook
from tsodso.core.assets import KINDS, TABLES
from tsodso.core.series import ROWS_PER_BLOCK, row_blocks
from tsodso.simulators import storage
from tsodso.simulators.rebound import Rebound


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
    load_kind: np.ndarray | None = None  # (n_load,) kind of each load (None: all "load")
    sto_eta: np.ndarray | None = None  # (n_sto,) round-trip efficiency (None: lossless)

    def kinds(self, table: str) -> np.ndarray:
        """The asset kind of every element of `table` (tsodso.core.assets)."""
        if table == "sgen":
            return self.sgen_kind
        if table == "load":
            return (self.load_kind if self.load_kind is not None
                    else np.full(len(self.load_bus), "load"))
        return np.full(len(self.sto_bus), "storage")

    def buses(self, table: str) -> np.ndarray:
        return {"sgen": self.sgen_bus, "load": self.load_bus, "storage": self.sto_bus}[table]


@dataclass(frozen=True)
class Offers:
    """This step's offers, per bid slot of the run's book (slot order): MW and EUR/MWh."""

    mw: np.ndarray
    price: np.ndarray


@dataclass(frozen=True)
class Dispatch:
    """The coordinator's activations of a step, per bid slot (MW), and the same without the
    TSO's activations of D-connected resources (for the AC counterfactual of the conflict
    rules; None when the TSO activated none)."""

    activated: np.ndarray
    without_tso_d: np.ndarray | None = None


@dataclass(frozen=True)
class Setpoints:
    """Changes to the realised element set-points of one grid (pandapower signs);
    `without_tso` holds the changes without the TSO's activations in this D grid."""

    dp_load: np.ndarray
    dp_sgen: np.ndarray
    dp_sto: np.ndarray
    dp_balancing: float = 0.0
    without_tso: Setpoints | None = None
    # the providers' own change of their schedule before any market (storage cut to its
    # energy, payback of shifted load): net injection, MW, + = more; part of the imbalance
    schedule_mw: float = 0.0


class Portfolio:
    """All flexible resources of a run, their bid slots and their state."""

    def __init__(self, flexibility: Any, grids: list[GridAssets],
                 t_col: Callable[[str, int], int], balancing_t_col: int, step_h: float):
        """`t_col(grid, bus)` gives the PTDF column where a resource's injection shows in the
        T grid (a D grid's interface bus for its resources). `flexibility` is the scenario's
        section of that name (shares and prices per kind, the balancing ladder)."""
        self.flex = flexibility
        self.step_h = step_h
        self.grids = {g.name: g for g in grids}
        rows: list[dict] = []
        # per slot: (grid, table, element weights) to spread an activation
        self._members: list[tuple[str, str, np.ndarray]] = []
        bus_of_slot: list[int] = []
        flex = flexibility
        for g in grids:  # one resource per kind and bus, in the order of the kinds table
            for kind in KINDS:
                is_kind = g.kinds(kind.table) == kind.name
                buses = g.buses(kind.table)
                for bus in np.unique(buses[is_kind]):
                    idx = np.flatnonzero(is_kind & (buses == bus))
                    self._add(rows, bus_of_slot, g, kind.name, kind.table, idx, int(bus), t_col,
                              kind.directions, flex)
        ladder = flex.balancing
        t_grid = next(g.name for g in grids if g.level == "T")
        for direction, base in ((1, ladder.price_up), (-1, ladder.price_down)):
            for b in range(ladder.blocks):
                name = f"balancing:{'up' if direction > 0 else 'down'}{b + 1}"
                rows.append(dict(resource=name, kind="balancing", grid=t_grid, level="T",
                                 t_bus=balancing_t_col, direction=direction,
                                 mw=ladder.block_mw, price=base + b * ladder.price_step))
                self._members.append((t_grid, "balancing", np.zeros(0, dtype=np.int64)))
                bus_of_slot.append(-1)
        self.book = BidBook.from_rows(rows)
        self.slot_bus = np.asarray(bus_of_slot, dtype=np.int64)  # bus in its own grid (-1: none)
        self._element_slots()
        self._n_steps = max((g.fc_load.shape[0] for g in grids), default=0)
        self._stacked: dict[str, tuple[int, np.ndarray]] = {}  # see `_rows`
        self._stack(grids)
        self._base_price = self.book.price.copy()
        groups: dict[int, list[tuple[int, np.ndarray]]] = {}
        for s, (grid, table, idx) in enumerate(self._members):
            if table == "storage":  # storage units as positions in the stacked arrays
                first = self._at[(grid, "storage")].start
                idx = first + np.asarray(idx, dtype=np.int64).reshape(-1)
                groups.setdefault(len(idx), []).append((s, idx))
        self._sto_groups = [(np.array([s for s, _ in m], dtype=np.int64),
                             np.stack([i for _, i in m])) for m in groups.values()]

    def _stack(self, grids: list[GridAssets]) -> None:
        """The elements of all grids in one array per table (grids in order, each grid's
        elements in its own order), so that each step works on all grids at once; the
        per-grid arrays handed out are slices of them (`_at`: grid, table -> slice)."""
        flex = self.flex
        self._at: dict[tuple[str, str], slice] = {}
        for table in TABLES:
            lo = 0
            for g in grids:
                n = len(g.kinds(table))
                self._at[(g.name, table)] = slice(lo, lo + n)
                lo += n
        cat = np.concatenate
        self._sto_rating = cat([np.asarray(g.sto_rating, dtype=float) for g in grids])
        self._sto_e_min = cat([np.asarray(g.sto_e_min, dtype=float) for g in grids])
        self._sto_e_max = cat([np.asarray(g.sto_e_max, dtype=float) for g in grids])
        self._soc = cat([g.sto_e0.astype(float) for g in grids])
        self._eta = cat([storage.one_way(g.sto_eta if g.sto_eta is not None
                                         else np.ones(len(g.sto_bus))) for g in grids])
        self._rebound = Rebound(max((g.fc_load.shape[0] for g in grids), default=0), np.array(
            [getattr(flex.offer(kd), "payback_steps", 0) for g in grids
             for kd in g.kinds("load")], dtype=np.int64))
        self._shares = {t: cat([self._share[(g.name, t)] for g in grids]) for t in TABLES}
        # per (table, direction): the slot of every stacked element (-1: none), and the
        # positions of those with a slot
        self._slots = {(t, d): cat([self._slot_of[(g.name, t, d)] for g in grids])
                       for t in TABLES for d in (1, -1)}
        self._has = {key: np.flatnonzero(slot >= 0) for key, slot in self._slots.items()}
        # per (table, direction): whether every stacked element has a slot, which have one,
        # and the slot to read each element's share of an activation from (0 for those
        # without, masked out)
        self._spread = {key: (bool(np.all(slot >= 0)), slot >= 0, np.maximum(slot, 0))
                        for key, slot in self._slots.items()}
        self._fix = (np.zeros(sum(g.fc_load.shape[1] for g in grids)), np.zeros(len(self._soc)))
        self._schedule = self._schedules()
        self._bal = [(self._members[s][0], int(s), int(self.book.direction[s]))
                     for s in self._balancing]

    def _schedules(self) -> dict[str, float]:
        """Net injection change of the providers' own schedule corrections per grid (MW,
        + = more): the same for every set-point message of a step."""
        fix_load, fix_sto = self._fix
        if not (fix_load.any() or fix_sto.any()
                or np.signbit(fix_load).any() or np.signbit(fix_sto).any()):
            # no corrections (every one +0.0, most steps): each grid's sums are +0.0, and
            # -(+0.0) - (+0.0) is -0.0, as summed grid by grid
            return dict.fromkeys(self.grids, -0.0)
        return {name: float(-fix_load[self._at[(name, "load")]].sum()
                            - fix_sto[self._at[(name, "storage")]].sum()) for name in self.grids}

    @property
    def soc(self) -> dict[str, np.ndarray]:
        """State of charge of each grid's storage units (MWh; views of the run's state)."""
        return {name: self._soc[self._at[(name, "storage")]] for name in self.grids}

    @property
    def eta(self) -> dict[str, np.ndarray]:
        """One-way efficiency of each grid's storage units (`storage.one_way`)."""
        return {name: self._eta[self._at[(name, "storage")]] for name in self.grids}

    def _add(self, rows, bus_of_slot, g: GridAssets, kind, table, idx, bus, t_col, directions,
             flex) -> None:
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
            bus_of_slot.append(bus)

    def _element_slots(self) -> None:
        """Per grid, table and direction: the slot each element bids through (-1: none)."""
        self._slot_of: dict[tuple[str, str, int], np.ndarray] = {}
        n_elem = {"sgen": lambda g: len(g.sgen_kind), "load": lambda g: len(g.load_bus),
                  "storage": lambda g: len(g.sto_bus)}
        for name, g in self.grids.items():
            for table, size in n_elem.items():
                for d in (1, -1):
                    self._slot_of[(name, table, d)] = np.full(size(g), -1, dtype=np.int64)
        for s, (grid, table, idx) in enumerate(self._members):
            if table != "balancing":
                self._slot_of[(grid, table, int(self.book.direction[s]))][idx] = s
        self._balancing = np.flatnonzero(self.book.kind == "balancing")
        flex = self.flex
        self._share = {(name, table): np.array([flex.offer(k).share for k in g.kinds(table)],
                                               dtype=float)
                       for name, g in self.grids.items() for table in TABLES}

    # --- each step ----------------------------------------------------------------------
    def _rows(self, k: int, what: str) -> np.ndarray:
        """Step k's forecast row (`fc_sgen`, `fc_load`, `fc_sto`) of all grids, stacked (a
        view: callers do not change it). The rows are stacked a block of steps at a time (the
        block the forecasts are made in), not once per step and use."""
        b = k // ROWS_PER_BLOCK
        got = self._stacked.get(what)
        if got is None or got[0] != b:
            lo = b * ROWS_PER_BLOCK
            hi = min(lo + ROWS_PER_BLOCK, self._n_steps)
            got = self._stacked[what] = (b, np.concatenate(
                [np.asarray(getattr(g, what)[lo:hi]) for g in self.grids.values()], axis=1))
        return got[1][k - b * ROWS_PER_BLOCK]

    def offer(self, k: int) -> BidBook:
        """Update the book's offered MW for step k from forecasts and state of charge."""
        flex = self.flex
        w_sgen = np.maximum(self._rows(k, "fc_sgen"), 0.0) * self._shares["sgen"]
        w_load = np.maximum(self._rows(k, "fc_load"), 0.0) * self._shares["load"]
        fc_sto = self._rows(k, "fc_sto")
        rating, share = self._sto_rating, self._shares["storage"]
        lo, hi = storage.power_range(self._soc, self._sto_e_min, self._sto_e_max, rating,
                                     self.step_h, self._eta)
        base = np.clip(fc_sto, lo, hi)  # the schedule, cut to the state of charge
        self._fix = (self._rebound.due(k).copy(), base - fc_sto)
        self._schedule = self._schedules()
        # up: discharge more (down to the lowest feasible power); down: the opposite
        w_up = np.minimum(share * rating, base - lo)
        w_dn = np.minimum(share * rating, hi - base)
        self._weights: dict[tuple[str, int], np.ndarray] = {}
        slots, weights = [], []
        for key, w in ((("sgen", -1), w_sgen), (("load", 1), w_load), (("load", -1), w_load),
                       (("storage", 1), np.maximum(w_up, 0.0)),
                       (("storage", -1), np.maximum(w_dn, 0.0))):
            has = self._has[key]
            slots.append(self._slots[key][has])
            weights.append(w[has])
            self._weights[key] = np.where(self._spread[key][1], w, 0.0)
        # each slot sums its own elements in their order, from 0 (as one slot at a time)
        mw = np.bincount(np.concatenate(slots), weights=np.concatenate(weights),
                         minlength=len(self.book))
        mw[self._balancing] = flex.balancing.block_mw
        self.book.mw[:] = mw
        self._price_storage()
        return self.book

    def _price_storage(self) -> None:
        """Storage prices from the state of charge of each slot's units (`storage.py`), for
        all storage slots of the same size at once (row sums of the stacked members: the
        same sums as one slot at a time)."""
        for slots, idx in self._sto_groups:
            cap = self._sto_e_max[idx].sum(axis=1)
            stored = self._soc[idx].sum(axis=1)
            fill = np.full(len(slots), 0.5)
            np.divide(stored, cap, out=fill, where=cap > 0)
            up, down = storage.price_factors(fill)
            factor = np.where(self.book.direction[slots] > 0, up, down)
            self.book.price[slots] = self._base_price[slots] * factor

    def capability(self) -> np.ndarray:
        """MW each slot can offer at most over the run window (to weight pooled slots)."""
        cap = np.zeros(len(self.book))
        flex = self.flex
        peak = self._forecast_peaks()
        for s, (grid, table, idx) in enumerate(self._members):
            g = self.grids.get(grid)
            share = flex.offer(self.book.kind[s]).share if table != "balancing" else 1.0
            if table in ("sgen", "load"):
                cap[s] = share * peak[s]
            elif table == "storage":
                cap[s] = share * g.sto_rating[idx].sum()
            else:
                cap[s] = flex.balancing.block_mw
        return cap

    def _forecast_peaks(self) -> np.ndarray:
        """Per sgen/load slot, the highest sum of its elements' positive forecasts over the
        run window (0 for other slots), read block by block (the forecasts are made per block
        of steps). Slots of equal size are summed together, each over its own elements in
        their own order (the same sums as one slot at a time)."""
        peak = np.zeros(len(self.book))
        groups: dict[tuple[str, str, int], list[tuple[int, np.ndarray]]] = {}
        for s, (grid, table, idx) in enumerate(self._members):
            if table in ("sgen", "load"):
                idx = np.asarray(idx, dtype=np.int64).reshape(-1)
                groups.setdefault((grid, table, len(idx)), []).append((s, idx))
        stacked = [(grid, table, np.array([s for s, _ in m], dtype=np.int64),
                    np.stack([i for _, i in m])) for (grid, table, _), m in groups.items()]
        first = next(iter(self.grids.values()), None)
        for lo, hi in (row_blocks(first.fc_sgen) if first is not None else []):
            pos: dict[tuple[str, str], np.ndarray] = {}
            for grid, table, slots, idx in stacked:  # all grids of a block, then the next
                if (grid, table) not in pos:
                    g = self.grids[grid]
                    fc = g.fc_sgen if table == "sgen" else g.fc_load
                    pos[(grid, table)] = np.maximum(fc[lo:hi], 0.0)
                sums = pos[(grid, table)][:, idx].sum(axis=2)  # (rows, slots)
                peak[slots] = np.maximum(peak[slots], sums.max(axis=0, initial=0))
        return peak

    def neutral(self) -> dict[str, Setpoints]:
        """No change to any grid (the start of a step, before the markets clear)."""
        fix_load, fix_sto = self._fix
        return self._per_grid(fix_load.copy(), np.zeros(len(self._shares["sgen"])),
                              fix_sto.copy(), dict.fromkeys(self.grids, 0.0))

    def _per_grid(self, dp_load: np.ndarray, dp_sgen: np.ndarray, dp_sto: np.ndarray,
                  balancing: dict[str, float]) -> dict[str, Setpoints]:
        """One `Setpoints` per grid from stacked changes (each grid's slice of them)."""
        at = self._at
        out = {}
        for name in self.grids:
            ld, sg, st = at[(name, "load")], at[(name, "sgen")], at[(name, "storage")]
            out[name] = Setpoints(dp_load=dp_load[ld], dp_sgen=dp_sgen[sg], dp_sto=dp_sto[st],
                                  dp_balancing=balancing[name],
                                  schedule_mw=self._schedule[name])
        return out

    def activate(self, k: int, activated: np.ndarray) -> dict[str, Setpoints]:
        """Turn activated MW per slot into element set-point changes; update state of charge.

        A slot's activation is spread over its elements in proportion to what each offered.
        """
        dp_load, dp_sgen, dp_sto, balancing = self._changes(activated)
        self._rebound.shift(k, dp_load - self._fix[0])
        charge = self._rows(k, "fc_sto") + dp_sto
        delta = storage.energy_change(charge, self.step_h, self._eta)
        self._soc[:] = np.clip(self._soc + delta, self._sto_e_min, self._sto_e_max)
        return self._per_grid(dp_load, dp_sgen, dp_sto, balancing)

    def setpoints(self, activated: np.ndarray) -> dict[str, Setpoints]:
        """Element set-point changes per grid for activated MW per slot, with the providers'
        own schedule corrections of this step (no state change)."""
        return self._per_grid(*self._changes(activated))

    def _changes(self, activated: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
        """Stacked load, sgen and storage changes (pandapower signs, with this step's schedule
        corrections) and the balancing MW per grid, for activated MW per slot."""
        mw = self.book.mw
        ratio = np.divide(activated, mw, out=np.zeros_like(mw), where=mw > 0)
        dp = {t: np.zeros(len(self._shares[t])) for t in TABLES}
        balancing = dict.fromkeys(self.grids, 0.0)
        for grid, s, d in self._bal:
            balancing[grid] += float(activated[s]) * d
        for (table, d), w in self._weights.items():
            every, has, slot = self._spread[(table, d)]
            share = w * ratio[slot]
            if not every:
                share = np.where(has, share, 0.0)
            # the change is d * share, + = more injection: added for generators, subtracted
            # for loads and storage (less consumption / charging). Adding -x is subtracting x
            # in IEEE arithmetic (signed zeros included), so d picks the operation
            if (d > 0) == (table == "sgen"):
                dp[table] += share
            else:
                dp[table] -= share
        return dp["load"] + self._fix[0], dp["sgen"], dp["storage"] + self._fix[1], balancing
