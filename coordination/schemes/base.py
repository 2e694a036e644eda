"""What every coordination scheme shares: its inputs (`MarketSetup`), its per-step result
(`Outcome`) and the `Scheme` base class with the stages several schemes reuse.

A scheme is a class with a unique `name`, its plain-language `label`, `short` name and
`description`, behaviour flags the rest of the program reads instead of the name
(`counterfactual`, `dso_balances_area`), and `clear(needs, reports) -> Outcome`. It is built
once per run from a `MarketSetup` and builds its markets (pyomo LPs) once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from tsodso.coordination.bid import BidBook
from tsodso.coordination.need import Needs
from tsodso.coordination.pooling import Pools, ZonePools
from tsodso.coordination.settlement import settle
from tsodso.core.records import Activation
from tsodso.core.vocabulary import TSO, dso_buyer

# The markets (pyomo) and network models (pandapower) are imported where a scheme is built,
# so that the scheme classes and their attributes (name, label, ...) import quickly.
if TYPE_CHECKING:
    from tsodso.coordination.dgrids import DGridView
    from tsodso.coordination.market import DState, FlexMarket
    from tsodso.coordination.ptdf import TransmissionModel


@dataclass(frozen=True)
class MarketSetup:
    """Everything a scheme's markets know of the run, fixed at set-up.

    `book` fixes the bid slots; its offered MW and prices are set each step by the
    coordinator before `Scheme.clear`. `penalties` and `market` are the scenario's sections
    of the same names (any object with those attributes).
    """

    book: BidBook
    step_h: float
    t_name: str
    transmission: TransmissionModel
    distribution: DGridView
    penalties: Any
    market: Any
    brp_imbalance: dict[str, np.ndarray] = field(default_factory=dict)  # party -> (steps,) MW

    @property
    def dso_grids(self) -> tuple[str, ...]:
        return self.distribution.grids


@dataclass(frozen=True)
class Outcome:
    activated: np.ndarray  # MW per slot (all buyers together)
    activations: list[Activation]  # settled: who bought what, at which price
    unserved_mw: float  # signed balancing need left unserved


class Scheme:
    """Base of the coordination schemes: the book, penalties, settlement, and the market
    stages several schemes share (the TSO's market, the DSOs' local markets first)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # plain-language name for reports
    short: ClassVar[str] = ""  # short name for tables
    description: ClassVar[str] = ""  # the scheme as implemented, in plain language
    counterfactual: ClassVar[bool] = False  # the no-coordination reference
    dso_balances_area: ClassVar[bool] = False  # DSOs keep their interface on schedule
    order: ClassVar[int] = 100  # position in tables and reports; its colour in figures

    def __init__(self, setup: MarketSetup):
        from tsodso.coordination.centralized import Penalties

        self.setup = setup
        self.book: BidBook = setup.book
        self.step_h = setup.step_h
        pen = setup.penalties
        self.penalties = Penalties(pen.imbalance_eur_per_mwh, pen.overload_eur_per_mwh)
        self.pen = pen
        self.pricing = setup.market.pricing
        self.is_d = self.book.level == "D"
        self.tm: TransmissionModel = setup.transmission
        self.dg: DGridView = setup.distribution
        self.dso_grids = setup.dso_grids

    @classmethod
    def notes(cls, scenario: Any) -> str:
        """What this run's options change about the scheme, in plain language ("" if
        nothing); the report prints it after the description."""
        return ""

    def clear(self, needs: Needs, reports: dict) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- shared stages -----------------------------------------------------------------
    def t_flow(self, reports: dict) -> np.ndarray:
        return self.tm.flow(reports[self.setup.t_name])

    def settle_stage(self, x: np.ndarray, buyer: np.ndarray | str,
                     value: np.ndarray | None) -> list[Activation]:
        """Activations of one market stage. Pay-as-clear pays each slot the locational value
        of its pool in that market (its price minus its reduced cost: the clearing price at
        its location and in its direction, congestion included)."""

        class _C:
            activated = x
            marginal_price = (self.book.direction * value if value is not None
                              else np.zeros(len(x)))

        return settle(self.book, _C, buyer, self.pricing, self.step_h)

    def tso_market(self) -> None:
        """Build the TSO's market over all slots, pooled by T bus, direction and price."""
        from tsodso.coordination.centralized import CentralizedMarket

        self.pools = Pools(self.book)
        self.market = CentralizedMarket(self.pools.book, self.tm.ptdf, self.penalties,
                                        self.step_h)

    def tso_stage(self, mw: np.ndarray, need: float, flow0: np.ndarray):
        """Clear the TSO's market on the offers `mw`; activations per slot."""
        pooled, price = self.pools.offered(mw, self.book.price)
        res = self.market.clear(pooled, price, need, flow0, self.tm.limit_mw,
                                exact_prices=self.pricing == "pay_as_clear")
        res.activated = self.pools.split(res.activated, mw)
        res.marginal_price = self.book.direction * res.value[self.pools.pool_of]
        return res

    def settle_tso(self, res) -> list[Activation]:
        return settle(self.book, res, TSO, self.pricing, self.step_h)

    def d_markets(self, areas: bool) -> tuple[ZonePools, FlexMarket]:
        """The DSOs' local markets as one LP: D bids pooled per feeder, D rows, and (with
        `areas`) one balance area per DSO."""
        from tsodso.coordination.market import FlexMarket

        pools = ZonePools(self.book, self.dg.model.zone, self.dg.model.capability)
        rows = self.dg.rows(pools)
        area = {dso_buyer(r.grid): r.pools for r in rows} if areas else None
        market = FlexMarket(pools.direction, np.full(pools.n, -1), self.step_h,
                            self.pen.imbalance_eur_per_mwh, self.pen.overload_eur_per_mwh,
                            self.pen.voltage_eur_per_bus_h, drows=rows, areas=area)
        return pools, market

    def dso_first(self, needs: Needs, reports: dict, state: dict[str, DState]):
        """The DSOs' local markets (their D bids against their D constraints), and what they
        leave for the next market: the TSO's need and T flows moved by the DSOs' activations,
        the D grids after them (linear model), the D offers left, and the DSOs' activations.
        """
        book = self.book
        d_mw = np.where(self.is_d, book.mw, 0.0)
        r1 = self.dmarket.clear(self.dpools.offered(d_mw, book.price), self.dpools.price,
                                d_state=state)
        x1 = self.dpools.split(r1.x, d_mw)
        signed1 = book.direction * x1
        need = needs.tso_need_mw - float(signed1.sum())
        flow0 = self.t_flow(reports) + self.tm.ptdf[:, book.t_bus] @ signed1
        after = self.dg.after(state, signed1)
        acts = self.settle_stage(x1, self.dso_buyers(), r1.value[self.dpools.pool_of])
        return x1, need, flow0, after, np.maximum(book.mw - x1, 0.0), acts

    def dso_buyers(self) -> np.ndarray:
        """The DSO of each slot's grid, as a buyer name."""
        if not hasattr(self, "_dso_buyers"):
            self._dso_buyers = np.array([dso_buyer(g) for g in self.book.grid], dtype=object)
        return self._dso_buyers
