"""Records the coordinator hands to the recorder: what was activated, which conflicts
occurred, and everything recorded for one step. Small frozen values, no behaviour."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import numpy as np


@dataclass(frozen=True)
class Activation:
    """One activated flexibility product in one step."""

    resource: str
    kind: str
    grid: str
    level: str
    buyer: str
    direction: int
    mw: float
    price: float  # EUR/MWh the buyer pays (the pricing rule's price)
    cost: float  # EUR the buyer pays over the step
    bid_price: float = float("nan")  # EUR/MWh the provider asked (its resource cost)

    @classmethod
    def many(cls, *columns: Iterable) -> list[Activation]:
        """One activation per row of the parallel `columns` (the fields in order, all ten),
        the same records as `Activation(*row)` each. A market step settles hundreds: the frozen
        `__init__` sets each field through `object.__setattr__`, here each record's fields
        are put in its instance dict at once (two to three times faster)."""
        if len(columns) != len(_ACTIVATION_FIELDS):
            raise TypeError(f"Activation.many takes {len(_ACTIVATION_FIELDS)} columns, "
                            f"got {len(columns)}")
        names = _ACTIVATION_FIELDS
        new = object.__new__
        out = []
        for row in zip(*columns, strict=True):
            a = new(cls)
            a.__dict__.update(zip(names, row, strict=True))
            out.append(a)
        return out


_ACTIVATION_FIELDS = tuple(f.name for f in fields(Activation))


@dataclass(frozen=True)
class Conflict:
    """One TSO-DSO conflict recorded in one step."""

    kind: str
    grid: str
    mw: float


#: Event kinds, in the order they are recorded within a step.
EVENT_KINDS: tuple[str, ...] = ("powerflow_not_converged", "coupling_iteration_limit",
                                "market_slack")


@dataclass(frozen=True)
class Event:
    """Something in one step a reader should know about, though the run went on: a power
    flow without solution, a market that ended on its slack, a coupling loop stopped at its
    iteration limit (kinds in ``EVENT_KINDS``)."""

    kind: str
    grid: str  # the grid concerned, or "" for the whole system
    detail: str  # what happened and what was done, one short sentence


@dataclass(frozen=True)
class StepRecord:
    """Everything recorded for one step."""

    step: int
    vm_pu: dict[str, np.ndarray]  # grid -> (buses,)
    loading_percent: dict[str, np.ndarray]  # grid -> (branches,)
    interface_p_mw: np.ndarray  # (interfaces,) positive from T into D
    interface_q_mvar: np.ndarray
    tso_imbalance_mw: float  # realised - forecast net injection before activations; + = long
    unresolved_imbalance_mw: float  # what the market left unserved (signed)
    activations: list[Activation]
    conflicts: list[Conflict]
    costs: dict[str, float]  # keys vocabulary.COST_KEYS; `social` is computed by the writer
    dso_cost_by_grid: np.ndarray  # (n DSO grids,) what each DSO paid for flexibility
    unserved: dict[str, float] = field(default_factory=dict)  # keys vocabulary.UNSERVED_KEYS
    events: list[Event] = field(default_factory=list)
    # (interfaces,) tap position of each interface transformer after the DSOs' tap control
    # (NaN: no tap control)
    interface_tap_pos: np.ndarray | None = None
