"""Pooling interchangeable slots gives the same market result as clearing them one by one."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.coordination.bid import BidBook
from tsodso.coordination.centralized import CentralizedMarket, Penalties
from tsodso.coordination.pooling import Pools


def _book():
    rows = [  # resource, kind, grid, level, t_bus, direction, mw, price
        ("a", "pv", "D1", "D", 0, -1, 10.0, 45.0),
        ("b", "pv", "D1", "D", 0, -1, 30.0, 45.0),  # same bus, direction, price as a
        ("c", "wind", "T", "T", 1, -1, 5.0, 35.0),
        ("d", "storage", "D1", "D", 0, 1, 20.0, 70.0),
        ("e", "storage", "D1", "D", 0, 1, 20.0, 70.0),
    ]
    return BidBook.from_rows(rows)


def test_pools_group_equal_slots():
    pools = Pools(_book())
    assert pools.n == 4  # storage slots (priced from their state of charge) pool alone
    mw, _ = pools.offered(_book().mw, _book().price)
    assert sorted(mw.tolist()) == [5.0, 20.0, 20.0, 40.0]


def test_storage_prices_may_change_each_step():
    book = _book()
    pools = Pools(book)
    price = book.price.copy()
    price[3], price[4] = 35.0, 105.0  # one unit nearly full, the other nearly empty
    _, pool_price = pools.offered(book.mw, price)
    assert pool_price[pools.pool_of[3]] == 35.0 and pool_price[pools.pool_of[4]] == 105.0
    assert pool_price[pools.pool_of[0]] == 45.0


def test_pooled_clearing_splits_pro_rata():
    book = _book()
    pools = Pools(book)
    ptdf = np.array([[0.5, -0.5]])
    market = CentralizedMarket(pools.book, ptdf, Penalties(1000.0, 2000.0), 0.25)
    mw, price = pools.offered(book.mw, book.price)
    # long by 25 MW: the 35 EUR wind (5 MW) first, then 20 MW of the 45 EUR pv pool
    res = market.clear(mw, price, -25.0, np.zeros(1), np.full(1, np.inf))
    per_slot = pools.split(res.activated, book.mw)
    np.testing.assert_allclose(per_slot, [5.0, 15.0, 5.0, 0.0, 0.0])
    assert res.unserved_mw == pytest.approx(0.0)


def test_changed_prices_are_refused():
    book = _book()
    pools = Pools(book)
    price = book.price.copy()
    price[1] = 50.0
    with pytest.raises(ValueError, match="prices changed"):
        pools.offered(book.mw, price)
