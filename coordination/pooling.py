"""Pool bid slots that a market cannot tell apart, and split pooled activations back.

A market with only transmission constraints sees a slot through its T bus, direction and price.
Slots that share all three are interchangeable for it: pooling them into one LP variable gives
the same optimum with a much smaller model (default scenario: ~8,000 slots, ~200 pools). The
pooled activation is split back pro rata to what each slot offered — the usual rule for equal
bids, and deterministic.
"""

from __future__ import annotations

import numpy as np

from coordination.bid import BidBook


class Pools:
    """Groups of slots with equal T bus, direction and price (prices as at construction)."""

    def __init__(self, book: BidBook):
        keys = np.stack([book.t_bus.astype(float), book.direction.astype(float), book.price])
        uniq, self.pool_of = np.unique(keys, axis=1, return_inverse=True)
        self.pool_of = self.pool_of.ravel()
        self.n = uniq.shape[1]
        first = np.full(self.n, -1)
        for s in range(len(book) - 1, -1, -1):
            first[self.pool_of[s]] = s
        self.book = BidBook(resource=[f"pool{p}" for p in range(self.n)],
                            kind=book.kind[first], grid=book.grid[first],
                            level=book.level[first], t_bus=book.t_bus[first],
                            direction=book.direction[first], mw=np.zeros(self.n),
                            price=book.price[first])
        self._slot_price = book.price.copy()

    def offered(self, mw: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MW and price per pool for this step's offers."""
        if not np.array_equal(price, self._slot_price):
            raise ValueError("slot prices changed since the pools were formed")
        return np.bincount(self.pool_of, weights=mw, minlength=self.n), self.book.price

    def split(self, pooled: np.ndarray, mw: np.ndarray) -> np.ndarray:
        """Activated MW per slot: each pool's activation pro rata to what its slots offered."""
        total = np.bincount(self.pool_of, weights=mw, minlength=self.n)
        ratio = np.divide(pooled, total, out=np.zeros(self.n), where=total > 0)
        return mw * ratio[self.pool_of]
