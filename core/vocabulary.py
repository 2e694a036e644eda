"""Shared vocabulary of a run: asset kinds, levels, directions, buyers, conflict kinds, cost
keys. One definition each, imported by every layer that names these things."""

from __future__ import annotations

from tsodso.core.assets import KINDS

#: Asset kinds of the grids' elements (defined in tsodso.core.assets), in table order.
ASSET_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS)
#: Asset kinds whose RES output can be curtailed (the generators: down only).
RES_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS if k.table == "sgen")
#: Kinds of bid slots: the asset kinds plus the TSO's balancing ladder at the EHV link.
BID_KINDS: tuple[str, ...] = (*ASSET_KINDS, "balancing")

#: Grid levels: transmission (the TSO's) and distribution (one grid per DSO).
LEVELS: tuple[str, ...] = ("T", "D")

#: Directions: +1 up = more injection or less consumption, -1 down = the opposite.
UP, DOWN = 1, -1

#: Buyers: the TSO, each DSO as ``DSO:<grid>``, market parties as ``BRP:<id>``.
TSO = "TSO"
DSO_PREFIX = "DSO:"
BRP_PREFIX = "BRP:"


def dso_buyer(grid: str) -> str:
    """The buyer name of the DSO operating `grid`."""
    return f"{DSO_PREFIX}{grid}"


def buyer_side(buyer: str) -> str:
    """'tso', 'dso' or 'brp': the side of a buyer name (cost keys use these)."""
    if buyer == TSO:
        return "tso"
    if buyer.startswith(DSO_PREFIX):
        return "dso"
    return "brp"


#: Conflict kinds, in the order conflicts are recorded (see tsodso.coordination.conflicts).
CONFLICT_KINDS: tuple[str, ...] = (
    "opposite_direction", "tso_causes_dso_violation", "dso_causes_tso_imbalance",
    "interface_schedule_deviation", "double_activation")

#: The social cost of a step (EUR), by which schemes are ranked: the resource cost of what was
#: activated (at the providers' bid prices) plus the value of what stays unserved after the
#: market (imbalance, MVA above branch ratings and voltage outside the band, T and D apart).
SOCIAL_KEYS: tuple[str, ...] = ("resource", "imbalance", "overload_t", "overload_d", "voltage_t",
                                "voltage_d")
#: Money moved between parties in a step (EUR), never part of the social cost: what each
#: buyer side paid for flexibility under the pricing rule, imbalance charges settled with the
#: TSO (BRPs' open positions, DSOs' schedule deviations), and the congestion rent (the part of
#: pay-as-clear payments priced by network constraints rather than by the balance).
TRANSFER_KEYS: tuple[str, ...] = ("tso", "dso", "brp", "brp_imbalance_charges",
                                  "dso_imbalance_charges", "congestion_rent")
#: Cost components of a step record (social cost parts, then transfers).
COST_KEYS: tuple[str, ...] = (*SOCIAL_KEYS, *TRANSFER_KEYS)
#: The per-step cost columns of a results file: the components and the social cost.
COST_COLUMNS: tuple[str, ...] = (*COST_KEYS, "social")
#: Physical quantities left unserved in a step (after the market, on the AC grid).
UNSERVED_KEYS: tuple[str, ...] = ("imbalance_mwh", "overload_t_mwh", "overload_d_mwh",
                                  "voltage_t_puh", "voltage_d_puh")
