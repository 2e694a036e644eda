"""Storage physics and prices: the power a unit can run at for one step without leaving its
energy limits, its state of charge after a step, and the price of its offers from the state
of charge (the opportunity cost of the stored energy).

Conventions (pandapower): p > 0 charges. The efficiency is a round trip, split evenly between
charging and discharging (sqrt each way): charging p MW for h hours stores sqrt(eta) p h MWh,
discharging p MW takes p h / sqrt(eta) MWh out of the unit.
"""

from __future__ import annotations

import numpy as np

#: value of stored energy relative to the configured price, at empty (0) and full (1) state of
#: charge: discharging (up) is priced `UP_EMPTY - fill`, charging (down) `DOWN_EMPTY + fill`
#: times the configured price; both equal the configured price at half full.
UP_EMPTY = 1.5
DOWN_EMPTY = 0.5


def one_way(eta_round_trip: np.ndarray) -> np.ndarray:
    """One-way efficiency of a round-trip efficiency (fraction; SimBench's
    `efficiency_percent` column holds a fraction, 0.95; values above 1 are read as percent)."""
    eta = np.asarray(eta_round_trip, dtype=float)
    eta = np.where(eta > 1.0, eta / 100.0, eta)
    return np.sqrt(np.clip(np.nan_to_num(eta, nan=1.0), 1e-3, 1.0))


def energy_change(p_mw: np.ndarray, step_h: float, eta: np.ndarray) -> np.ndarray:
    """MWh the state of charge changes by when the unit runs at `p_mw` for one step."""
    p = np.asarray(p_mw, dtype=float)
    return np.where(p > 0, p * eta, p / eta) * step_h


def power_range(soc: np.ndarray, e_min: np.ndarray, e_max: np.ndarray, rating: np.ndarray,
                step_h: float, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest power (MW, charging +) the unit can run at for one whole step
    within its rating and energy limits; the range always holds 0."""
    lo = np.maximum(-rating, -(soc - e_min) * eta / step_h)
    hi = np.minimum(rating, (e_max - soc) / (eta * step_h))
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


def price_factors(fill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factors on the configured up and down prices at state of charge `fill` (0..1): a full
    unit discharges cheaply and charges dearly, an empty one the other way round."""
    f = np.clip(np.nan_to_num(np.asarray(fill, dtype=float), nan=0.5), 0.0, 1.0)
    return UP_EMPTY - f, DOWN_EMPTY + f
