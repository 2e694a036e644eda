"""Per-step detection of conflicts between the TSO and the DSOs.

A conflict is a place where the two operators work against each other or where one
operator's activations hurt the other's grid or balance. Detection is pure bookkeeping on
one step's activations and grid states; it runs no solver and no power flow (the caller
supplies the after-state and the sensitivity estimate of the TSO's effect).

Rules:

- net activation of a buyer in grid g = sum(direction * mw) of its activations of resources
  connected in g.
- ``opposite_direction`` (per D grid g): the TSO's net activation in g and DSO:g's net
  activation in g are both non-zero (> 1e-6 MW) with opposite signs; mw = the smaller
  magnitude.
- ``tso_causes_dso_violation`` (per D grid g with TSO activations in g): a bus outside
  [vm_min, vm_max] or a branch above loading_max in the after-state that would be within
  limits without the TSO's activations in g — the AC power flow of g without them
  (``vm_without_tso``/``loading_without_tso``) where given, else the after-state minus the
  sensitivity estimate dv_tso/dl_tso — i.e. a violation
  the TSO's activations created; mw = |TSO net activation in g| (recorded once per grid and
  step if any such bus/branch exists). Only created violations count: a violation that
  exists without the TSO's activations too is not recorded, even if they made it worse.
- ``dso_causes_tso_imbalance`` (per D grid g, only when dso_balances_area and joint_balance
  are False: in a joint market the balance is cleared together with the DSOs' needs): DSO:g's
  net activation is non-zero; it shifts the interface exchange, which the TSO has to
  balance; mw = |DSO net activation in g|.
- ``interface_schedule_deviation`` (per D grid g, only when dso_balances_area is True):
  deviation = area_imbalance_mw[g] + DSO:g's net activation in g; recorded when
  |deviation| > schedule_tolerance_mw; mw = |deviation|.
- ``double_activation`` (per resource): the activations of one resource id by all buyers
  together exceed what it offered by more than 1e-6 MW; mw = the excess; grid = the
  resource's grid. Also: the same physical resource activated up and down in the same step
  by different buyers (resource ids end with ":up"/":down"; strip that suffix to find the
  physical resource) counts, mw = the smaller of the two.

Details: BRP activations count only for ``double_activation``. "TSO activations in g" means
at least one TSO activation of more than 1e-6 MW of a resource connected in g. A resource
id missing from ``offered_mw`` offered 0 MW. "The smaller of the two" is the smaller of the
physical resource's total up and total down MW; both must exceed 1e-6 MW, and at least one
buyer of one direction must differ from a buyer of the other. A resource can give both a
capability and an up-and-down ``double_activation`` record in the same step. A D grid
without ``vm_after``/``dv_tso`` (or ``loading_after``/``dl_tso``) is not checked for that
quantity; a missing ``area_imbalance_mw`` entry counts as 0. Limits are compared strictly
(a value exactly on a limit is within it). Output is ordered by the kind order of
``KINDS``, then grid name (then resource id for ``double_activation``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from tsodso.core.records import Activation, Conflict
from tsodso.core.vocabulary import CONFLICT_KINDS

KINDS = CONFLICT_KINDS

#: MW below which a net activation, an excess or an activation counts as zero.
EPS_MW = 1e-6

_SUFFIXES = (":up", ":down")


@dataclass
class StepView:
    """What conflict detection needs to know about one step."""

    activations: list[Activation]
    dso_grids: list[str]
    # resource id -> MW it offered this step (per slot: resource ids already include the direction)
    offered_mw: dict[str, float]
    vm_after: dict[str, np.ndarray]  # D grid -> bus voltages after all activations (AC)
    loading_after: dict[str, np.ndarray]  # D grid -> branch loadings (%) after all activations (AC)
    # D grid -> estimated voltage change caused by the TSO's activations of resources in that
    # grid (pu, per bus; from sensitivities)
    dv_tso: dict[str, np.ndarray]
    # D grid -> estimated loading change (percentage points, per branch) caused by those activations
    dl_tso: dict[str, np.ndarray]
    limits: dict[str, tuple[float, float, float]]  # D grid -> (vm_min, vm_max, loading_max %)
    # D grid -> realised - forecast net injection of its assets (+ = long), before activations
    area_imbalance_mw: dict[str, float]
    schedule_tolerance_mw: float  # deviation below this is not a conflict
    dso_balances_area: bool  # True in shared balancing: the DSO must keep its interface on schedule
    # True where one market clears the TSO's balance and the DSOs' needs together: a DSO's
    # activation then moves no balance the TSO has to cover afterwards
    joint_balance: bool = False
    # D grid -> the AC state after the market without the TSO's activations of resources in
    # that grid (a counterfactual power flow); when given, it decides instead of dv/dl_tso
    vm_without_tso: dict[str, np.ndarray] | None = None
    loading_without_tso: dict[str, np.ndarray] | None = None


def net_activation(activations: list[Activation], buyer: str, grid: str) -> float:
    """Sum of direction * mw of ``buyer``'s activations of resources connected in ``grid``."""
    return float(sum(a.direction * a.mw for a in activations
                     if a.buyer == buyer and a.grid == grid))


def physical_resource(resource: str) -> str:
    """Resource id without its ":up"/":down" slot suffix."""
    for suffix in _SUFFIXES:
        if resource.endswith(suffix):
            return resource[: -len(suffix)]
    return resource


@functools.lru_cache(maxsize=1 << 16)
def _physical(resource: str) -> str:
    """`physical_resource`, remembered (the same ids come back every step)."""
    return physical_resource(resource)


def _pair(after: dict[str, np.ndarray], delta: dict[str, np.ndarray], grid: str,
          what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """After-state and TSO-caused change of one grid, or None if either is missing."""
    if grid not in after or grid not in delta:
        return None
    a = np.asarray(after[grid], dtype=float)
    d = np.asarray(delta[grid], dtype=float)
    if a.shape != d.shape:
        raise ValueError(f"{what} of grid {grid!r}: after-state shape {a.shape} "
                         f"!= TSO change shape {d.shape}")
    return a, d


def _filled(values: np.ndarray, nan: float) -> np.ndarray:
    """`values` with NaN (no power-flow solution) read as `nan`. Infinite values stay: against
    finite limits they compare as np.nan_to_num's largest floats would."""
    a = np.asarray(values, dtype=float)
    return np.where(np.isnan(a), nan, a)


def _tso_created_violation(view: StepView, grid: str) -> bool:
    """Whether a bus or branch of ``grid`` violates its limit only because of the TSO: by the
    AC counterfactual where the view has one, else by the sensitivity estimate."""
    vm_min, vm_max, loading_max = view.limits[grid]
    if view.vm_without_tso is not None and grid in view.vm_without_tso:
        after = _filled(view.vm_after[grid], 1.0)
        without = _filled(view.vm_without_tso[grid], 1.0)
        bad = (after < vm_min) | (after > vm_max)
        if np.any(bad & (without >= vm_min) & (without <= vm_max)):
            return True
        la = _filled(view.loading_after[grid], 0.0)
        lw = _filled((view.loading_without_tso or {}).get(grid, la), 0.0)
        return bool(np.any((la > loading_max) & (lw <= loading_max)))
    vm = _pair(view.vm_after, view.dv_tso, grid, "voltage")
    if vm is not None:
        after, dv = vm
        without = after - dv
        bad = (after < vm_min) | (after > vm_max)
        ok_without = (without >= vm_min) & (without <= vm_max)
        if np.any(bad & ok_without):
            return True
    ld = _pair(view.loading_after, view.dl_tso, grid, "loading")
    if ld is not None:
        after, dl = ld
        if np.any((after > loading_max) & (after - dl <= loading_max)):
            return True
    return False


def _net_activations(activations: list[Activation]) -> tuple[dict[tuple[str, str], float],
                                                               set[str]]:
    """`net_activation` of every (buyer, grid) at once (the same sums, in the same order), and
    the grids where the TSO activated more than EPS_MW of a resource."""
    net: dict[tuple[str, str], float] = {}
    tso_grids: set[str] = set()
    for a in activations:
        key = (a.buyer, a.grid)
        net[key] = net.get(key, 0) + a.direction * a.mw
        if a.buyer == "TSO" and a.mw > EPS_MW:
            tso_grids.add(a.grid)
    return {k: float(v) for k, v in net.items()}, tso_grids


def _grid_conflicts(view: StepView, grid: str,
                    nets: tuple[dict[tuple[str, str], float], set[str]] | None = None
                    ) -> list[Conflict]:
    """The per-D-grid conflict kinds of one grid (``nets``: `_net_activations` of the step)."""
    out: list[Conflict] = []
    net, tso_grids = nets if nets is not None else _net_activations(view.activations)
    tso = net.get(("TSO", grid), 0.0)
    dso = net.get((f"DSO:{grid}", grid), 0.0)
    if abs(tso) > EPS_MW and abs(dso) > EPS_MW and tso * dso < 0:
        out.append(Conflict("opposite_direction", grid, min(abs(tso), abs(dso))))
    tso_active = grid in tso_grids
    if tso_active and _tso_created_violation(view, grid):
        out.append(Conflict("tso_causes_dso_violation", grid, abs(tso)))
    if view.dso_balances_area:
        deviation = view.area_imbalance_mw.get(grid, 0.0) + dso
        if abs(deviation) > view.schedule_tolerance_mw:
            out.append(Conflict("interface_schedule_deviation", grid, abs(deviation)))
    elif abs(dso) > EPS_MW and not view.joint_balance:
        out.append(Conflict("dso_causes_tso_imbalance", grid, abs(dso)))
    return out


#: resource id -> the number of its slot and the number of its physical resource, packed
#: into one integer (slot << _BITS | physical); the same ids come back every step. Numbers
#: only tell ids apart (both tables are cleared before they would outgrow _MAX_IDS).
_NUMBERS: dict[str, int] = {}
_PHYSICAL: dict[str, int] = {}
_MAX_IDS = 1 << 18
_BITS = 20  # > log2(_MAX_IDS): a physical number fits below the slot's


def _numbers(resources: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The slot numbers and the physical-resource numbers of `resources` (two int64 arrays),
    numbering the ids not seen before (all of a step's ids from the same tables)."""
    new = set(resources).difference(_NUMBERS)
    if new:
        if len(_NUMBERS) + len(new) > _MAX_IDS:
            _NUMBERS.clear()
            _PHYSICAL.clear()
            new = set(resources)
        for resource in dict.fromkeys(r for r in resources if r in new):  # in order
            phys = _PHYSICAL.setdefault(physical_resource(resource), len(_PHYSICAL))
            _NUMBERS[resource] = len(_NUMBERS) << _BITS | phys
    packed = np.fromiter(map(_NUMBERS.__getitem__, resources), dtype=np.int64,
                         count=len(resources))
    return packed >> _BITS, packed & ((1 << _BITS) - 1)


def _double_activations(view: StepView) -> list[tuple[str, Conflict]]:
    """Over-sold resource slots and physical resources bought up and down by different buyers,
    each with the (slot or physical) resource id it concerns, each kind in the order the ids
    first occur. The MW of a slot (of a physical resource and direction) are summed from 0 in
    activation order (bincount), as one activation at a time."""
    acts = view.activations
    if not acts:
        return []
    out: list[tuple[str, Conflict]] = []
    res = [a.resource for a in acts]
    slot_number, physical_number = _numbers(res)
    mw = np.array([a.mw for a in acts], dtype=float)
    direction = np.array([a.direction for a in acts])
    # over-sold slots
    _, first, inv = np.unique(slot_number, return_index=True, return_inverse=True)
    total = np.bincount(inv, weights=mw, minlength=len(first))
    offered = view.offered_mw
    excess = total - np.array([offered.get(res[i], 0.0) for i in first], dtype=float)
    for j in sorted(np.flatnonzero(excess > EPS_MW), key=lambda j: first[j]):
        i = first[j]
        out.append((res[i], Conflict("double_activation", acts[i].grid, float(excess[j]))))
    # physical resources bought up and down
    _, first, inv = np.unique(physical_number, return_index=True, return_inverse=True)
    up, down = direction == 1, direction == -1
    up_mw = np.bincount(inv[up], weights=mw[up], minlength=len(first))
    down_mw = np.bincount(inv[down], weights=mw[down], minlength=len(first))
    both = np.flatnonzero((up_mw > EPS_MW) & (down_mw > EPS_MW))
    for j in sorted(both, key=lambda j: first[j]):
        at = np.flatnonzero(inv == j)
        up_buyers = {acts[i].buyer for i in at if direction[i] == 1}
        down_buyers = {acts[i].buyer for i in at if direction[i] == -1}
        if any(u != d for u in up_buyers for d in down_buyers):
            i = first[j]
            out.append((_physical(res[i]), Conflict("double_activation", acts[i].grid,
                                                    float(min(up_mw[j], down_mw[j])))))
    return out


def detect(view: StepView) -> list[Conflict]:
    """All conflicts of one step, ordered by kind (as in ``KINDS``), then grid name."""
    keyed: list[tuple[str, Conflict]] = []
    nets = _net_activations(view.activations)
    for grid in dict.fromkeys(view.dso_grids):  # each grid once
        keyed.extend(("", c) for c in _grid_conflicts(view, grid, nets))
    keyed.extend(_double_activations(view))
    order = {k: i for i, k in enumerate(KINDS)}
    keyed.sort(key=lambda rc: (order[rc[1].kind], rc[1].grid, rc[0], rc[1].mw))
    return [c for _, c in keyed]
