"""Centralized AS market: the TSO clears all T and D bids against its balancing need.

Transmission constraints enter through PTDFs (DC model); distribution constraints are ignored
(that is the point of the scheme). The market is the common market LP of
:mod:`tsodso.coordination.lp` (built once per run, re-solved each step from the previous basis)
with one "system" balance area and the PTDF rows, in MW (objective in EUR/h; the reported
objective is x step_h, in EUR)::

    min  sum_i price_i x_i + pen_imb (short + long) + pen_over sum_l over_l
    s.t. 0 <= x_i <= mw_i                                        (activated MW per slot)
         sum_i dir_i x_i + short - long = need                   (balance; dual = price)
         |flow0_l + sum_i PTDF[l, t_bus_i] dir_i x_i| <= limit_l + over_l,  over_l >= 0

Branches no slot bus can move (all their PTDF entries below ``PTDF_TOL``) are left out of the
LP; their overload is the constant ``max(0, |flow0| - limit)``, still reported and costed.

Ties use the core's "offered" policy: only when offered slots share a price is the LP solved
with prices raised by ``TIE_EPS * rank`` (rank in (price, slot) order), then re-solved from
that basis at the true prices for the exact dual (unless ``exact_prices=False``). Every solve
is checked and, if it fails, repeated from scratch (HiGHS's basis cleared; see the core's
docstring).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tsodso.coordination.bid import BidBook
from tsodso.coordination.lp import TIE_EPS, ZERO_MW
from tsodso.coordination.market import FlexMarket

__all__ = ["PTDF_TOL", "TIE_EPS", "CentralizedMarket", "Clearing", "Penalties"]

PTDF_TOL = 1e-9  # PTDF entries below this (MW/MW) are treated as zero


@dataclass
class Penalties:
    imbalance_eur_per_mwh: float  # price of unserved balancing energy (both directions)
    overload_eur_per_mwh: float  # price of MW above a branch limit, per MWh


@dataclass
class Clearing:
    activated: np.ndarray  # MW per bid slot (>= 0)
    unserved_mw: float  # signed balancing need left unserved (need - sum(direction*activated))
    overload_mw: np.ndarray  # MW above limit per branch after clearing (>= 0)
    marginal_price: float  # EUR/MWh: dual of the balance constraint (uniform pay-as-clear price)
    objective: float  # EUR for the step: bid cost + penalties, at the true prices
    status: str
    flow_mw: np.ndarray | None = None  # DC flow per branch after clearing (flow0 + PTDF effect)
    value: np.ndarray | None = None  # EUR/MWh per slot: price - reduced cost (nodal, own dir)
    parts: dict[str, np.ndarray] | None = None  # per slot: the value by cause (MarketResult)


class CentralizedMarket:
    """The TSO's market over all bid slots of ``book`` with T network constraints.

    ``ptdf_matrix`` is (n_branch, n_bus) with columns addressed by ``book.t_bus``. The LP and
    the solver are built here once (``build_model_s`` records the time); :meth:`clear` only
    updates the model's data and re-solves. ``book`` fixes the slots (``t_bus``,
    ``direction``); its ``mw``/``price`` are not read: :meth:`clear` gets them.
    """

    def __init__(self, book: BidBook, ptdf_matrix: np.ndarray, penalties: Penalties,
                 step_h: float):
        t0 = time.perf_counter()
        self.book = book
        self.penalties = penalties
        self.step_h = float(step_h)
        self.ptdf = np.asarray(ptdf_matrix, dtype=float)
        if self.ptdf.ndim != 2:
            raise ValueError("ptdf_matrix must be 2-D (n_branch, n_bus)")
        n = len(book)
        self.n_slot = n
        self.n_branch = self.ptdf.shape[0]
        if n and (book.t_bus.min() < 0 or book.t_bus.max() >= self.ptdf.shape[1]):
            raise ValueError("book.t_bus outside the PTDF columns")
        self._dir = book.direction.astype(float)
        # flow change per MW activated, per slot (direction included), for reporting
        self._slot_ptdf = self.ptdf[:, book.t_bus] * self._dir
        self.market = FlexMarket(
            self._dir, np.asarray(book.t_bus), self.step_h,
            float(penalties.imbalance_eur_per_mwh), float(penalties.overload_eur_per_mwh), 0.0,
            ptdf=self.ptdf, areas={"system": np.arange(n)}, ptdf_tol=PTDF_TOL,
            ties="offered", name="centralized")
        self.lp = self.market.lp
        self.modelled = self.market.t_rows  # PTDF rows in the LP
        self.build_model_s = time.perf_counter() - t0

    @property
    def solver(self):
        """The HiGHS model (built once, kept for the whole run)."""
        return self.lp.highs

    @property
    def n_solves(self) -> int:
        return self.lp.n_solves

    @property
    def n_cold_restarts(self) -> int:
        return self.lp.n_cold_restarts

    def clear(self, mw: np.ndarray, price: np.ndarray, need_mw: float, flow0_mw: np.ndarray,
              limit_mw: np.ndarray, exact_prices: bool = True) -> Clearing:
        """Clear one step.

        ``mw``/``price``: per slot (MW offered, EUR/MWh asked). ``need_mw``: net upward MW the
        TSO must activate (> 0 when the system is short). ``flow0_mw``/``limit_mw``: per PTDF
        row, the flow before any activation and its limit (``np.inf`` = no limit).
        ``exact_prices=False`` skips the re-solve at the true prices after a tie-broken solve:
        the activations are the same, the dual and slot values are then off by at most
        ``TIE_EPS`` per rank (use it when the prices are not needed, as under pay-as-bid).
        """
        mw = np.maximum(np.asarray(mw, dtype=float), 0.0)
        price = np.asarray(price, dtype=float)
        flow0 = np.asarray(flow0_mw, dtype=float)
        limit = np.asarray(limit_mw, dtype=float)
        if mw.shape != (self.n_slot,) or price.shape != (self.n_slot,):
            raise ValueError(f"mw and price need {self.n_slot} values")
        if flow0.shape != (self.n_branch,) or limit.shape != (self.n_branch,):
            raise ValueError(f"flow0_mw and limit_mw need {self.n_branch} values")
        if not (np.all(np.isfinite(mw)) and np.all(np.isfinite(price))
                and np.all(np.isfinite(flow0)) and np.isfinite(need_mw)):
            raise ValueError("mw, price, need_mw and flow0_mw must be finite")
        if np.any(np.isnan(limit)) or np.any(limit < 0):
            raise ValueError("limit_mw must be >= 0 (np.inf for no limit)")
        r = self.market.clear(mw, price, need={"system": float(need_mw)}, t_flow0=flow0,
                              t_limit=limit, exact_prices=exact_prices)
        x = r.x
        unserved = float(need_mw) - float(self._dir @ x)
        if abs(unserved) < ZERO_MW:
            unserved = 0.0
        nz = np.flatnonzero(x)  # the activated slots (few): the product over all ~8,000
        flow = flow0 + self._slot_ptdf[:, nz] @ x[nz]  # columns cost ~5 ms a step
        overload = np.maximum(np.abs(flow) - limit, 0.0)
        overload[overload < ZERO_MW] = 0.0
        pen = self.penalties
        objective = self.step_h * (
            float(price @ x)
            + pen.imbalance_eur_per_mwh * abs(unserved)
            + pen.overload_eur_per_mwh * float(overload.sum())
        )
        return Clearing(
            activated=x,
            unserved_mw=unserved,
            overload_mw=overload,
            marginal_price=r.balance_price["system"],
            objective=objective,
            status="optimal",
            flow_mw=flow,
            value=r.value,
            parts=r.parts,
        )
