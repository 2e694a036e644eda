"""What every coordination scheme shares: its inputs (`MarketSetup`), its per-step result
(`Outcome`) and the `Scheme` base class with the stages several schemes reuse.

A scheme is a class with a unique `name`, its plain-language `label`, `short` name and
`description`, behaviour flags the rest of the program reads instead of the name
(`counterfactual`, `dso_balances_area`), and `clear(needs, reports) -> Outcome`. It is built
once per run from a `MarketSetup` and builds its markets (LPs solved by HiGHS) once.
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

# The markets (highspy) and network models (pandapower) are imported where a scheme is built,
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
    # money moved besides the payments for activations (EUR, vocabulary.TRANSFER_KEYS):
    # imbalance charges settled with the TSO, congestion rent
    transfers: dict[str, float] = field(default_factory=dict)


class Scheme:
    """Base of the coordination schemes: the book, penalties, settlement, and the market
    stages several schemes share (the TSO's market, the DSOs' local markets first)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # plain-language name for reports
    short: ClassVar[str] = ""  # short name for tables
    description: ClassVar[str] = ""  # the scheme as implemented, in plain language
    counterfactual: ClassVar[bool] = False  # the no-coordination reference
    dso_balances_area: ClassVar[bool] = False  # DSOs keep their interface on schedule
    joint_balance: ClassVar[bool] = False  # one market clears the balance with the DSOs' needs
    order: ClassVar[int] = 100  # position in tables and reports; its colour in figures
    operator: ClassVar[str] = ""  # who clears the scheme's market(s)
    linear_d: ClassVar[bool] = True  # uses the D grids' linear model (refreshed per step)
    # a step's cost relative to `none`'s (benchmarks/bench_schemes.py default 96); `compare`
    # starts the dearest scheme first so that runs side by side end close together
    step_cost: ClassVar[float] = 5.0

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
        self.d_lps: list[tuple[FlexMarket, ZonePools]] = []  # markets with D rows, their pools

    @classmethod
    def notes(cls, scenario: Any) -> str:
        """What this run's options change about the scheme, in plain language ("" if
        nothing); the report prints it after the description."""
        return ""

    def clear(self, needs: Needs, reports: dict) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError

    def relinearise(self, reports: dict) -> list[str]:
        """Before a clearing: refresh the D grids' linear model where the reported state has
        moved (`DGridView.refresh`) and write those grids' new D rows into every market of
        the scheme. Returns the grids refreshed."""
        if not self.linear_d:
            return []
        grids = self.dg.refresh(reports)
        if grids:
            rows: dict[int, list] = {}  # markets over the same pools share their D rows
            for market, pools in self.d_lps:
                if id(pools) not in rows:
                    rows[id(pools)] = self.dg.rows(pools, grids)
                market.update_drows(rows[id(pools)])
        return grids

    # --- shared stages -----------------------------------------------------------------
    def t_flow(self, reports: dict) -> np.ndarray:
        return self.tm.flow(reports[self.setup.t_name])

    def settle_stage(self, x: np.ndarray, buyer: np.ndarray | str,
                     value: np.ndarray | None) -> list[Activation]:
        """Activations of one market stage. Pay-as-clear pays each slot `value`, its
        locational price in its own direction (see `clearing_prices`)."""

        class _C:
            activated = x
            marginal_price = (self.book.direction * value if value is not None
                              else np.zeros(len(x)))

        return settle(self.book, _C, buyer, self.pricing, self.step_h)

    def clearing_prices(self, value: np.ndarray, parts: dict[str, np.ndarray] | None,
                        offered: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Pay-as-clear prices per slot from a market's locational values, and the value by
        cause scaled to them.

        A value is the dual price of the market's real constraints at the slot's location and
        direction. Where a slack binds (a need the offers cannot cover, an overload or a
        voltage deviation the offers cannot remove) the duals carry the slack's value, not a
        bid; the price is then the scarcity price: the highest price asked by any slot offered
        in that direction in this market. Accepted slots are never paid less than they asked.
        """
        price = np.asarray(value, dtype=float).copy()
        book = self.book
        for d in (1, -1):
            mine = book.direction == d
            asked = book.price[mine & (offered > 0)]
            cap = float(asked.max()) if len(asked) else float(book.price[mine].max(initial=0.0))
            price[mine] = np.minimum(price[mine], cap)
        if not parts:
            return price, {}
        total = sum(parts.values())
        scale = np.divide(price, total, out=np.zeros_like(price), where=np.abs(total) > 1e-9)
        return price, {c: p * scale for c, p in parts.items()}

    def imbalance_price(self, res) -> float:
        """EUR/MWh at which open positions are settled with the TSO (single price, + = paid
        for being short): the marginal price of the TSO's balancing (the dual of its balance
        row), held to the scarcity price of the offers when the balance slack binds."""
        return self.scarcity_clip(float(res.marginal_price_system))

    def scarcity_clip(self, lam: float) -> float:
        """A balance price held within the highest price asked in its direction."""
        d = 1 if lam >= 0 else -1
        asked = self.book.price[self.book.direction == d]
        cap = float(asked.max()) if len(asked) else 0.0
        return float(np.clip(lam, -cap, cap))

    def congestion_rent(self, x: np.ndarray, paid: np.ndarray, lam: float) -> float:
        """EUR of pay-as-clear payments that differ from the market's uniform balancing price:
        Σ MW × (price paid − direction × balancing price) × h, the balancing price held to the
        scarcity price like every price. A transfer inside the payments; 0 under pay-as-bid.
        Negative where congestion lowers what offers behind it are paid."""
        if self.pricing != "pay_as_clear":
            return 0.0
        uniform = self.book.direction * self.scarcity_clip(float(lam))
        return float(np.sum(x * (paid - uniform))) * self.step_h

    def cost_causation(self, x: np.ndarray, parts: dict[str, np.ndarray],
                       dso_grids: tuple[str, ...]) -> dict[str, float]:
        """Shares of a joint market's procurement per buyer, by cost causation from the duals:
        the TSO for what its balance and T rows give the activated MW, each DSO for its D
        rows. A cause whose rows lower the value (the activation worked against them) gets no
        share; the others are normalised to sum to one. No binding row at all: the TSO's."""
        money = {TSO: float(np.sum(x * (parts.get("balance", 0.0) + parts.get("t", 0.0))))}
        for g in dso_grids:
            if g in parts:
                money[dso_buyer(g)] = float(np.sum(x * parts[g]))
        pos = {b: max(m, 0.0) for b, m in money.items()}
        total = sum(pos.values())
        if total <= 1e-9:
            return {TSO: 1.0}
        return {b: m / total for b, m in pos.items() if m > 0}

    def tso_market(self) -> None:
        """Build the TSO's market over all slots, pooled by T bus, direction and price."""
        from tsodso.coordination.centralized import CentralizedMarket

        self.pools = Pools(self.book)
        self.market = CentralizedMarket(self.pools.book, self.tm.ptdf, self.penalties,
                                        self.step_h)

    def tso_stage(self, mw: np.ndarray, need: float, flow0: np.ndarray):
        """Clear the TSO's market on the offers `mw`; activations per slot, pay-as-clear
        prices (`marginal_price`, signed) and the congestion rent (`rent`, EUR)."""
        pooled, price = self.pools.offered(mw, self.book.price)
        res = self.market.clear(pooled, price, need, flow0, self.tm.limit_mw,
                                exact_prices=self.pricing == "pay_as_clear")
        res.activated = self.pools.split(res.activated, mw)
        of = self.pools.pool_of
        paid, parts = self.clearing_prices(res.value[of], {c: p[of] for c, p in
                                                            (res.parts or {}).items()}, mw)
        res.marginal_price_system = res.marginal_price  # the balance dual, EUR/MWh up
        res.marginal_price = self.book.direction * paid
        res.rent = self.congestion_rent(res.activated, paid, res.marginal_price_system)
        return res

    def settle_tso(self, res) -> list[Activation]:
        return settle(self.book, res, TSO, self.pricing, self.step_h)

    def d_markets(self, areas: bool) -> tuple[ZonePools, FlexMarket]:
        """The DSOs' local markets as one LP: D bids pooled per feeder, D rows, and (with
        `areas`) one balance area per DSO."""
        from tsodso.coordination.market import VOLTAGE_STEP_PU, FlexMarket

        pools = ZonePools(self.book, self.dg.model.zone, self.dg.model.capability)
        rows = self.dg.rows(pools)
        area = {dso_buyer(r.grid): r.pools for r in rows} if areas else None
        market = FlexMarket(pools.direction, np.full(pools.n, -1), self.step_h,
                            self.pen.imbalance_eur_per_mwh, self.pen.overload_eur_per_mwh,
                            self.pen.voltage_eur_per_pu_h * VOLTAGE_STEP_PU, drows=rows, areas=area)
        self.d_lps.append((market, pools))
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
        flow0 = self.t_flow(reports) + self.t_shift(signed1)
        after = self.dg.after(state, signed1)
        of = self.dpools.pool_of
        paid, _ = self.clearing_prices(r1.value[of], None, d_mw)
        acts = self.settle_stage(x1, self.dso_buyers(), paid)
        return x1, need, flow0, after, np.maximum(book.mw - x1, 0.0), acts

    @property
    def slot_ptdf(self) -> np.ndarray:
        """The PTDF column of each slot's T bus, (T rows, slots): the T flows' change per MW
        injected by each slot. Gathered once (the PTDF is fixed for the run): the gather of
        ~8,000 columns cost more than the product it feeds."""
        if not hasattr(self, "_slot_ptdf"):
            self._slot_ptdf = self.tm.ptdf[:, self.book.t_bus]
        return self._slot_ptdf

    def t_shift(self, signed_mw: np.ndarray) -> np.ndarray:
        """Change of the T flows (MW per PTDF row) from signed MW per slot (up = +), over the
        slots that moved (a few dozen of ~8,000: the product over all cost ~5 ms a step)."""
        nz = np.flatnonzero(signed_mw)
        return self.slot_ptdf[:, nz] @ signed_mw[nz]

    def dso_buyers(self) -> np.ndarray:
        """The DSO of each slot's grid, as a buyer name."""
        if not hasattr(self, "_dso_buyers"):
            self._dso_buyers = np.array([dso_buyer(g) for g in self.book.grid], dtype=object)
        return self._dso_buyers
