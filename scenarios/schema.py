"""Scenario file schema (TOML), validated on load.

Every section rejects unknown keys; numbers carry their allowed range. See docs/scenarios.md.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)
from tsodso.core.assets import KINDS as ASSET_DEFS
from tsodso.core.vocabulary import ASSET_KINDS
from tsodso.scenarios.forecast import DEFAULT_ERRORS

PROFILE_STEP_S = 900
PROFILE_ROWS = 35136  # quarter hours of the SimBench profile year 2016
PROFILE_START = datetime(2016, 1, 1)
KINDS = ASSET_KINDS


#: Largest seed: the results file stores it as a 64-bit signed integer.
SEED_MAX = 2**63 - 1
#: Characters a scenario name may not hold: control characters (they would reach terminals
#: and file names) and path separators are rejected; output file names are derived from names.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: SimBench code: 1-<voltage levels>-<upper type>-<lower types>-<case>-<sw|no_sw>.
_SIMBENCH_CODE = re.compile(r"^1-((?:EHV|HV|MV|LV)+|complete_data)-[A-Za-z0-9]+-[A-Za-z0-9.]*-"
                            r"[0-2]-(?:sw|no_sw)$")
T_LEVELS = ("EHV", "HV")
D_LEVELS = ("MV", "LV")


class Strict(BaseModel):
    """Base of every section: unknown keys are errors, and types are strict (a boolean is not a
    number, a string is not a number; an integer is accepted where a float is expected)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


#: Folder that relative paths of a scenario file (grid.file, grid.profiles) are relative to;
#: set while a file is validated (None: the working directory).
BASE_DIR: ContextVar[Path | None] = ContextVar("tsodso_scenario_dir", default=None)
#: True while a scenario with its own profile calendar (grid.source = "pandapower") is
#: validated: the run window is then checked against the profile file, not the year 2016.
_OWN_CALENDAR: ContextVar[bool] = ContextVar("tsodso_own_calendar", default=False)


class GridCfg(Strict):
    """The grid: SimBench (by code), the built-in tiny grid, or an own pandapower net."""

    source: Literal["simbench", "tiny", "pandapower"] = "simbench"
    code: str = "1-HVMV-mixed-all-2-sw"  # SimBench code
    # the DSOs' MV busbar voltage target: HV/MV taps set to it at the first step and, with
    # control.dso_taps, held within the deadband every step (None: keep the net's taps)
    mv_busbar_pu: float | None = Field(1.0, ge=0.9, le=1.1)
    # own grids (source = "pandapower"): the net, its TSO-DSO interfaces, its time series
    file: str | None = None  # pandapower JSON net (pandapower.to_json)
    interfaces: list[int] | None = Field(None, min_length=1)  # interface transformer indices
    interface_kv: float | None = Field(None, gt=0.0)  # or: transformers from this HV level down
    profiles: str | None = None  # CSV or Parquet, one column per element and quantity
    profiles_start: datetime | None = None  # time of the first profile row (2016-01-01)
    profiles_step_s: int | None = Field(None, ge=60, le=86400)  # between rows (900 s)

    @field_validator("file", "profiles")
    @classmethod
    def _relative_to_scenario(cls, value: str | None) -> str | None:
        """Relative paths in a scenario file are relative to the file's folder."""
        base = BASE_DIR.get()
        if value is None or Path(value).is_absolute() or base is None:
            return value
        return str(base / value)

    @model_validator(mode="after")
    def _own_grid_keys(self) -> GridCfg:
        own = ("file", "interfaces", "interface_kv", "profiles", "profiles_start",
               "profiles_step_s")
        if self.source != "pandapower":
            given = [k for k in own if getattr(self, k) is not None]
            if given:
                raise ValueError(f"grid.{given[0]} needs source = \"pandapower\"")
            return self
        if self.file is None:
            raise ValueError("source = \"pandapower\" needs grid.file (a pandapower JSON net)")
        if self.profiles is None:
            raise ValueError("source = \"pandapower\" needs grid.profiles (CSV or Parquet)")
        if self.interfaces is not None and self.interface_kv is not None:
            raise ValueError("give grid.interfaces or grid.interface_kv, not both")
        return self


class RunCfg(Strict):
    start: datetime = datetime(2016, 1, 1)
    steps: int = Field(96, ge=1, le=PROFILE_ROWS)
    step_s: int = Field(900, ge=PROFILE_STEP_S, le=86400, multiple_of=PROFILE_STEP_S)
    seed: int = Field(0, ge=0, le=SEED_MAX)

    @model_validator(mode="after")
    def _within_year(self) -> RunCfg:
        if self.start.tzinfo is not None:
            raise ValueError("start must be a local date-time without a time zone "
                             "(e.g. 2016-01-01T00:00:00), as the profiles are")
        if _OWN_CALENDAR.get():  # own profiles: checked against the profile file
            return self
        offset = (self.start - PROFILE_START).total_seconds()
        if offset < 0 or offset % PROFILE_STEP_S:
            raise ValueError("start must be a quarter hour within the profile year 2016")
        last = offset / PROFILE_STEP_S + (self.steps - 1) * self.step_s / PROFILE_STEP_S
        if last >= PROFILE_ROWS:
            raise ValueError(
                f"start + steps * step_s runs past the end of the profile year 2016 "
                f"(last profile row {int(last)} >= {PROFILE_ROWS})")
        return self

    @property
    def first_row(self) -> int:
        return int((self.start - PROFILE_START).total_seconds() // PROFILE_STEP_S)

    @property
    def stride(self) -> int:
        return self.step_s // PROFILE_STEP_S


class ErrorCfg(Strict):
    """Forecast error of one asset kind: AR(1), std as a fraction of the asset's rating."""

    sigma: float = Field(ge=0.0, le=1.0)
    rho: float = Field(0.9, ge=0.0, lt=1.0)
    common: float = Field(0.5, ge=0.0, le=1.0)


def _error_section(kind: str) -> type[ErrorCfg]:
    """`[forecast.<kind>]`: every key defaults to the kind's own value, so a partial section
    keeps the kind's defaults for the keys it leaves out."""
    p = DEFAULT_ERRORS[kind]
    return create_model(
        f"ErrorCfg_{kind}", __base__=ErrorCfg,
        __doc__=f"Forecast error of {kind} (defaults: tsodso.core.assets).",
        sigma=(float, Field(p.sigma, ge=0.0, le=1.0)),
        rho=(float, Field(p.rho, ge=0.0, lt=1.0)),
        common=(float, Field(p.common, ge=0.0, le=1.0)))


#: One section per asset kind of tsodso.core.assets. Defaults: intraday forecast errors.
ForecastCfg = create_model(
    "ForecastCfg", __base__=Strict,
    __doc__="Forecast error per asset kind (defaults and sources: tsodso.core.assets).",
    **{k.name: ((sec := _error_section(k.name)), sec()) for k in ASSET_DEFS})


class OfferCfg(Strict):
    """Flexibility of one asset kind: the share of its capability offered, and its prices."""

    share: float = Field(ge=0.0, le=1.0)
    price_up: float = Field(ge=0.0, le=1e5)  # EUR/MWh the buyer pays for upward activation
    price_down: float = Field(ge=0.0, le=1e5)  # EUR/MWh for downward activation
    # loads: an activation's energy is paid back over this many following steps (rebound)
    payback_steps: int = Field(0, ge=0, le=96)


class LadderCfg(Strict):
    """The TSO's balancing offer ladder at the EHV link (the rest of the system)."""

    blocks: int = Field(4, ge=0, le=50)
    block_mw: float = Field(50.0, ge=0.0, le=1e5)
    price_up: float = Field(90.0, ge=0.0, le=1e5)  # first upward block
    price_down: float = Field(40.0, ge=0.0, le=1e5)  # first downward block
    price_step: float = Field(20.0, ge=0.0, le=1e5)  # added per further block


class _FlexibilityBase(Strict):
    def offer(self, kind: str) -> OfferCfg:
        return getattr(self, kind)


def _offer_section(kind: str) -> type[OfferCfg]:
    """`[flexibility.<kind>]`: every key defaults to the kind's own offer, so a partial
    section keeps the kind's defaults for the keys it leaves out."""
    kind_def = next(k for k in ASSET_DEFS if k.name == kind)
    share, up, down = kind_def.offer

    def _payback_only_loads(self: OfferCfg) -> OfferCfg:
        if self.payback_steps and kind_def.table != "load":
            raise ValueError(f"flexibility.{kind}.payback_steps: only loads pay energy back")
        return self

    return create_model(
        f"OfferCfg_{kind}", __base__=OfferCfg,
        __doc__=f"Flexibility offered by {kind} (defaults: tsodso.core.assets).",
        share=(float, Field(share, ge=0.0, le=1.0)),
        price_up=(float, Field(up, ge=0.0, le=1e5)),
        price_down=(float, Field(down, ge=0.0, le=1e5)),
        payback_steps=(int, Field(kind_def.payback_steps, ge=0, le=96)),
        __validators__={"payback_only_loads": model_validator(mode="after")(_payback_only_loads)})


#: One offer section per asset kind of tsodso.core.assets, then the TSO's balancing ladder.
FlexibilityCfg = create_model(
    "FlexibilityCfg", __base__=_FlexibilityBase,
    __doc__="Flexibility offered per asset kind, and the TSO's balancing ladder.",
    **{k.name: ((sec := _offer_section(k.name)), sec()) for k in ASSET_DEFS},
    balancing=(LadderCfg, LadderCfg()))


class LevelLimits(Strict):
    vm_min_pu: float = Field(0.9, gt=0.5, lt=1.0)
    vm_max_pu: float = Field(1.1, gt=1.0, lt=1.5)
    loading_max_percent: float = Field(100.0, gt=0.0, le=500.0)


class LimitsCfg(Strict):
    # HV: 110 kV grids run up to 123 kV (1.118 pu); MV: EN 50160 +-10 %
    T: LevelLimits = LevelLimits(vm_min_pu=0.9, vm_max_pu=1.118, loading_max_percent=100.0)
    D: LevelLimits = LevelLimits(vm_min_pu=0.9, vm_max_pu=1.1, loading_max_percent=100.0)


class PenaltiesCfg(Strict):
    """Values of what stays unserved (docs/schemes.md, "Economics", gives their sources). The
    markets minimise them on their linear models and the social cost counts them on the AC
    grid. System balance is never traded for thermal loading: imbalance is valued above
    overloads."""

    # unserved balancing energy, both directions: the EU harmonised limit of balancing
    # energy prices, of the order of value-of-lost-load estimates
    imbalance_eur_per_mwh: float = Field(15000.0, gt=0.0, le=1e6)
    # MVA x h above a branch rating: the cost of last-resort curtailment or load shedding
    # that relieves the branch, below the value of lost load
    overload_eur_per_mwh: float = Field(3000.0, ge=0.0, le=1e6)
    # pu x h outside the voltage band, per bus (50,000 = 500 EUR per bus-hour at 0.01 pu)
    voltage_eur_per_pu_h: float = Field(50000.0, ge=0.0, le=1e8)

    @model_validator(mode="after")
    def _balance_first(self) -> PenaltiesCfg:
        if self.imbalance_eur_per_mwh <= self.overload_eur_per_mwh:
            raise ValueError("imbalance_eur_per_mwh must exceed overload_eur_per_mwh (system "
                             "balance is never traded for thermal loading)")
        return self


class CouplingCfg(Strict):
    tolerance_mw: float = Field(1e-2, gt=0.0, le=10.0)
    max_iterations: int = Field(30, ge=1, le=1000)


class MarketCfg(Strict):
    pricing: Literal["pay_as_bid", "pay_as_clear"] = "pay_as_bid"
    prequalification: bool = False  # centralized: DSOs cap D bids to what their grids carry
    schedule_tolerance_mw: float = Field(0.1, ge=0.0, le=1e4)  # shared balancing deviations
    brp_trading: bool = True  # integrated: BRPs buy flexibility against their own imbalance
    # integrated: the imbalance price BRPs expect when they trade (what an open MWh costs
    # them); they buy offers cheaper than that. Settlement uses the TSO's actual price.
    brp_expected_imbalance_price: float = Field(150.0, ge=0.0, le=1e5)
    common_decomposed: bool = False  # common: DSO constraints cleared first, then jointly
    # markets aim this far inside the D limits, to absorb the linear model's error
    voltage_margin_pu: float = Field(0.002, ge=0.0, le=0.05)
    loading_margin_percent: float = Field(1.0, ge=0.0, le=20.0)


class ControlCfg(Strict):
    """The operators' own, non-market tools, applied every step before any market and the
    same in every scheme."""

    # the TSO moves the EHV set-point (the slack voltage of the T grid) each step so that T
    # bus voltages stay inside the T band less the margin, within +- max change of the
    # scenario's set-point; what stays outside is counted as unserved T voltage
    tso_setpoint: bool = True
    setpoint_margin_pu: float = Field(0.002, ge=0.0, le=0.05)
    max_setpoint_change_pu: float = Field(0.05, ge=0.0, le=0.2)
    # the DSOs' on-load tap changers at the HV/MV interface transformers: each step, before
    # any market, they move the taps (at most max_tap_moves) until the MV busbar is within
    # grid.mv_busbar_pu +- tap_deadband_pu
    dso_taps: bool = True
    tap_deadband_pu: float = Field(0.01, gt=0.0, le=0.05)
    max_tap_moves: int = Field(2, ge=1, le=20)


class Scenario(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    grid: GridCfg = GridCfg()
    run: RunCfg = RunCfg()
    forecast: ForecastCfg = ForecastCfg()
    flexibility: FlexibilityCfg = FlexibilityCfg()
    limits: LimitsCfg = LimitsCfg()
    penalties: PenaltiesCfg = PenaltiesCfg()
    coupling: CouplingCfg = CouplingCfg()
    market: MarketCfg = MarketCfg()
    control: ControlCfg = ControlCfg()

    @model_validator(mode="wrap")
    @classmethod
    def _calendar(cls, data: Any, handler: Any) -> Scenario:
        """An own grid brings its own profile calendar: tell RunCfg not to check the run
        window against the SimBench year (the grid check does it against the file)."""
        grid = data.get("grid") if isinstance(data, dict) else None
        own = isinstance(grid, dict) and grid.get("source") == "pandapower"
        token = _OWN_CALENDAR.set(own)
        try:
            return handler(data)
        finally:
            _OWN_CALENDAR.reset(token)

    @model_validator(mode="after")
    def _usable(self) -> Scenario:
        """Reject what validates field by field but cannot run: names with control characters,
        grids whose split has no T or no D grid, no flexibility and no balancing at all, and
        market margins that leave nothing of the voltage band."""
        if _CONTROL.search(self.name):
            raise ValueError("name must not contain control characters")
        if _CONTROL.search(self.description.replace("\n", "").replace("\t", "")):
            raise ValueError("description must not contain control characters")
        if self.grid.source == "simbench":
            m = _SIMBENCH_CODE.match(self.grid.code)
            if m is None:
                raise ValueError(f"unknown SimBench grid code {cut(self.grid.code)} (expected "
                                 "one like 1-HVMV-mixed-all-2-sw)")
            levels = re.findall("EHV|HV|MV|LV", m.group(1).replace("complete_data",
                                                                   "EHVHVMVLV"))
            if not any(x in T_LEVELS for x in levels) or not any(x in D_LEVELS for x in levels):
                raise ValueError(f"grid.code {self.grid.code} has no transmission (EHV/HV) or no "
                                 "distribution (MV/LV) level: the run needs both, e.g. HVMV")
        flex = self.flexibility
        ladder = flex.balancing
        if (all(flex.offer(k).share == 0 for k in KINDS)
                and (ladder.blocks == 0 or ladder.block_mw == 0)):
            raise ValueError("nothing to act with: every flexibility share is 0 and the "
                             "balancing ladder is empty")
        margin = self.market.voltage_margin_pu
        for level, lim in (("T", self.limits.T), ("D", self.limits.D)):
            if 2 * margin >= lim.vm_max_pu - lim.vm_min_pu:
                raise ValueError(f"market.voltage_margin_pu {margin} leaves no voltage band "
                                 f"inside limits.{level} ({lim.vm_min_pu}-{lim.vm_max_pu} pu)")
        return self


def cut(value: object, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 15]}... ({len(text)} chars)"
