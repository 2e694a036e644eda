"""Settlement: turn a market clearing into priced activations (who buys what, at what cost).

Pricing rules:

- ``pay_as_bid``: each activated slot is paid its own asked price (``book.price``).
- ``pay_as_clear``: each activated slot is paid the clearing price. ``clearing.marginal_price``
  is the price of one more MW of *upward* energy (the dual of the balance constraint), so an up
  slot is paid ``+marginal_price`` and a down slot ``-marginal_price`` per MWh: in a market
  short of energy the price is positive and paid to up slots; in a long market it is negative
  and down slots receive its magnitude. ``marginal_price`` may also be a per-slot array in the
  same convention (e.g. nodal prices at each slot's bus).

``Activation.price`` is what the buyer pays per MWh activated; ``cost = price * mw * step_h``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tsodso.coordination.bid import BidBook
from tsodso.core.records import Activation

if TYPE_CHECKING:  # any clearing with .activated and .marginal_price settles
    from tsodso.coordination.centralized import Clearing

PRICING = ("pay_as_bid", "pay_as_clear")
MIN_MW = 1e-6  # activations below this are not settled (solver noise)


def settle(book: BidBook, clearing: Clearing, buyer: str | np.ndarray, pricing: str,
           step_h: float) -> list[Activation]:
    """Priced activations of one clearing, in slot order (slots with < 1e-6 MW skipped).

    ``buyer``: one buyer for all slots ("TSO", "DSO:<grid>", "BRP:<id>") or one per slot.
    """
    n = len(book)
    mw = np.asarray(clearing.activated, dtype=float)
    if mw.shape != (n,):
        raise ValueError(f"clearing has {mw.shape} activations for {n} slots")
    if pricing == "pay_as_bid":
        unit = book.price.astype(float)
    elif pricing == "pay_as_clear":
        clear_price = np.broadcast_to(np.asarray(clearing.marginal_price, dtype=float), (n,))
        unit = book.direction.astype(float) * clear_price
    else:
        raise ValueError(f"unknown pricing {pricing!r}; expected one of {PRICING}")
    idx = np.flatnonzero(mw >= MIN_MW)
    if isinstance(buyer, str):
        buyers = [str(buyer)] * len(idx)
    else:
        buyers = [str(b) for b in np.broadcast_to(np.asarray(buyer, dtype=object), (n,))[idx]]
    step_h = float(step_h)
    # the selected slots' columns as Python values at once (the same values as one by one)
    m, p = mw[idx].tolist(), unit[idx].tolist()
    return Activation.many(
        book.resource[idx].tolist(), book.kind[idx].tolist(), book.grid[idx].tolist(),
        book.level[idx].tolist(), buyers, book.direction[idx].tolist(), m, p,
        [p_ * m_ * step_h for p_, m_ in zip(p, m, strict=True)],
        book.price[idx].astype(float).tolist())
