"""Pool bid slots that a market cannot tell apart, and split pooled activations back.

A market with only transmission constraints sees a slot through its T bus, direction and price.
Slots that share all three are interchangeable for it: pooling them into one LP variable gives
the same optimum with a much smaller model (default scenario: ~8,000 slots, ~200 pools). The
pooled activation is split back pro rata to what each slot offered — the usual rule for equal
bids, and deterministic.

Slots whose price follows the resource's state (storage, priced from its state of charge) may
change price every step: each stays a pool of its own, whose price is the slot's price of the
step; the other slots' prices must stay as they were when the pools were formed.
"""

from __future__ import annotations

import numpy as np
from tsodso.coordination.bid import BidBook
from tsodso.core.assets import STATE_PRICED


class _Grouping:
    """Slots grouped by a key; offers summed per group, activations split back pro rata."""

    def _group(self, book: BidBook, keys: np.ndarray) -> None:
        varying = np.isin(book.kind, STATE_PRICED)
        own = np.where(varying, np.arange(len(book)), -1).astype(float)  # a pool each
        keys = np.vstack([keys, own[None, :]])
        self._fixed = ~varying
        _, self.first, self.pool_of = np.unique(keys, axis=1, return_index=True,
                                                return_inverse=True)
        self.pool_of = self.pool_of.ravel()  # pool of each slot; first: its lowest slot
        self.n = len(self.first)
        self._slot_price = book.price.copy()

    def _sum(self, mw: np.ndarray, price: np.ndarray) -> np.ndarray:
        if not np.array_equal(price[self._fixed], self._slot_price[self._fixed]):
            raise ValueError("slot prices changed since the pools were formed")
        self._pool_price(np.asarray(price, dtype=float)[self.first])
        return np.bincount(self.pool_of, weights=mw, minlength=self.n)

    def _pool_price(self, price: np.ndarray) -> None:
        """Take this step's pool prices (they differ only for state-priced slots)."""

    def split(self, pooled: np.ndarray, mw: np.ndarray) -> np.ndarray:
        """Activated MW per slot: each pool's activation pro rata to what its slots offered."""
        total = np.bincount(self.pool_of, weights=mw, minlength=self.n)
        ratio = np.divide(pooled, total, out=np.zeros(self.n), where=total > 0)
        return mw * ratio[self.pool_of]


class Pools(_Grouping):
    """Groups of slots with equal T bus, direction and price (prices as at construction)."""

    def __init__(self, book: BidBook):
        self._group(book, np.stack([book.t_bus.astype(float), book.direction.astype(float),
                                    book.price]))
        first = self.first
        self.book = BidBook(resource=[f"pool{p}" for p in range(self.n)],
                            kind=book.kind[first], grid=book.grid[first],
                            level=book.level[first], t_bus=book.t_bus[first],
                            direction=book.direction[first], mw=np.zeros(self.n),
                            price=book.price[first])

    def _pool_price(self, price: np.ndarray) -> None:
        self.book.price[:] = price

    def offered(self, mw: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MW and price per pool for this step's offers."""
        return self._sum(mw, price), self.book.price


class ZonePools(_Grouping):
    """Pools for markets that model the D grids: D slots of one grid, zone (feeder), direction
    and price; T slots of one T bus, direction and price.

    A D pool's sensitivity is the capability-weighted mean of its members' bus sensitivities
    (renewed when the D grids' linear model is refreshed; the pools themselves are fixed for
    the run); its activation is split back pro rata to what the members offered.
    """

    def __init__(self, book: BidBook, zone: np.ndarray, capability: np.ndarray):
        is_d = book.level == "D"
        grid_id = np.unique(book.grid, return_inverse=True)[1].ravel()
        self._group(book, np.stack([
            grid_id.astype(float), np.where(is_d, zone, -1).astype(float),
            np.where(is_d, -1, book.t_bus).astype(float), book.direction.astype(float),
            book.price]))
        first = self.first
        self.direction = book.direction[first]
        self.price = book.price[first]
        self.grid = book.grid[first]
        self.level = book.level[first]
        self.t_bus = book.t_bus[first]
        self.capability = np.maximum(np.asarray(capability, dtype=float), 0.0)

    def _pool_price(self, price: np.ndarray) -> None:
        self.price[:] = price

    def offered(self, mw: np.ndarray, price: np.ndarray) -> np.ndarray:
        """MW per pool for this step's offers (`price` then holds this step's pool prices)."""
        return self._sum(mw, price)

    def weights(self, slots: np.ndarray) -> np.ndarray:
        """Capability weights of `slots` within their pools (sum to 1 per pool)."""
        cap = self.capability[slots] + 1e-9
        total = np.bincount(self.pool_of[slots], weights=cap, minlength=self.n)
        return cap / total[self.pool_of[slots]]
