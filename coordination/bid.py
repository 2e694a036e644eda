"""The bid book: the fixed set of flexibility bid slots of a run.

One slot is one resource offering one direction. The set of slots (and their location) is fixed
for the whole run so that markets can build their optimisation models once; only the offered MW
and the asked price change from step to step (updated in place).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from tsodso.core.vocabulary import BID_KINDS, LEVELS

KINDS = BID_KINDS

_COLUMNS = ("resource", "kind", "grid", "level", "t_bus", "direction", "mw", "price")


@dataclass
class BidBook:
    """The fixed set of bid slots of a run (one slot = one resource and one direction);
    per-step values (mw, price) are updated in place each step."""

    resource: np.ndarray  # str, resource id
    kind: np.ndarray  # str: wind, pv, other_res, load, storage, balancing
    grid: np.ndarray  # str grid name
    level: np.ndarray  # str "T" / "D"
    t_bus: np.ndarray  # int: PTDF column of the T bus where the slot's injection appears
    direction: np.ndarray  # int8 +1/-1
    mw: np.ndarray  # float: MW offered this step (0 = not offered)
    price: np.ndarray  # float: EUR/MWh asked by the provider (>= 0)

    def __post_init__(self) -> None:
        self.resource = np.asarray(self.resource).astype(str)
        self.kind = np.asarray(self.kind).astype(str)
        self.grid = np.asarray(self.grid).astype(str)
        self.level = np.asarray(self.level).astype(str)
        self.t_bus = np.asarray(self.t_bus, dtype=np.int64)
        self.direction = np.asarray(self.direction, dtype=np.int8)
        self.mw = np.asarray(self.mw, dtype=float).copy()
        self.price = np.asarray(self.price, dtype=float).copy()
        n = len(self.resource)
        for name in _COLUMNS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"BidBook column {name!r} has {len(getattr(self, name))} "
                                 f"entries, expected {n}")
        if not np.all(np.isin(self.direction, (-1, 1))):
            raise ValueError("direction must be +1 (up) or -1 (down)")
        if not np.all(np.isin(self.level, LEVELS)):
            raise ValueError(f"level must be one of {LEVELS}")
        bad = set(self.kind.tolist()) - set(KINDS)
        if bad:
            raise ValueError(f"unknown kind(s) {sorted(bad)}; expected one of {KINDS}")

    def __len__(self) -> int:
        return len(self.resource)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping | tuple]) -> BidBook:
        """Build a book from rows (dicts with the column names, or tuples in column order:
        resource, kind, grid, level, t_bus, direction, mw, price)."""
        cols: dict[str, list] = {c: [] for c in _COLUMNS}
        for row in rows:
            values = row if isinstance(row, Mapping) else dict(zip(_COLUMNS, row, strict=True))
            for c in _COLUMNS:
                cols[c].append(values[c])
        return cls(**{c: np.asarray(v) if v else np.empty(0) for c, v in cols.items()})

    def copy(self) -> BidBook:
        """An independent book with the same slots, offers and prices."""
        return BidBook(**{c: getattr(self, c).copy() for c in _COLUMNS})

    def update(self, mw: np.ndarray, price: np.ndarray) -> None:
        """Set this step's offered MW and asked prices in place (arrays in slot order)."""
        mw = np.asarray(mw, dtype=float)
        price = np.asarray(price, dtype=float)
        if mw.shape != self.mw.shape or price.shape != self.price.shape:
            raise ValueError("mw and price must have one value per slot")
        self.mw[:] = mw
        self.price[:] = price

    def mask(self, **equals) -> np.ndarray:
        """Boolean slot mask where every given column equals the given value,
        e.g. ``book.mask(level="D", direction=1)``."""
        m = np.ones(len(self), dtype=bool)
        for name, value in equals.items():
            m &= getattr(self, name) == value
        return m
