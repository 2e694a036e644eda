"""Conflict detection: each kind on a hand-built step, its near-miss, and the volumes."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.coordination import conflicts
from tsodso.coordination.conflicts import KINDS, StepView, detect, physical_resource
from tsodso.core.records import Activation, Conflict

LIMITS = (0.95, 1.05, 100.0)


def _act(resource: str, grid: str, buyer: str, direction: int, mw: float) -> Activation:
    level = "T" if grid == "HV1" else "D"
    return Activation(resource=resource, kind="storage", grid=grid, level=level, buyer=buyer,
                      direction=direction, mw=mw, price=50.0, cost=mw * 50.0 * 0.25)


def _view(activations: list[Activation], **kw) -> StepView:
    """A step with plenty of offered MW, no grid data and no area imbalance unless given."""
    offered = {a.resource: 100.0 for a in activations}
    offered.update(kw.pop("offered_mw", {}))
    args = dict(activations=activations, dso_grids=["D1", "D2"], offered_mw=offered,
                vm_after={}, loading_after={}, dv_tso={}, dl_tso={},
                limits={"D1": LIMITS, "D2": LIMITS}, area_imbalance_mw={},
                schedule_tolerance_mw=0.5, dso_balances_area=False)
    args.update(kw)
    return StepView(**args)


def _kind(conflicts: list[Conflict], kind: str) -> list[Conflict]:
    return [c for c in conflicts if c.kind == kind]


def test_no_activations_no_conflicts():
    assert detect(_view([])) == []


def test_physical_resource_strips_direction_suffix():
    assert physical_resource("st7:up") == "st7"
    assert physical_resource("st7:down") == "st7"
    assert physical_resource("st7") == "st7"
    assert physical_resource("up:st7") == "up:st7"


# --- opposite_direction -------------------------------------------------------------------

def test_opposite_direction_volume_is_smaller_net():
    # TSO net in D1 = +5 - 2 = +3; DSO:D1 net = -4 -> opposite, volume min(3, 4) = 3.
    acts = [_act("a:up", "D1", "TSO", 1, 5.0), _act("c:down", "D1", "TSO", -1, 2.0),
            _act("b:down", "D1", "DSO:D1", -1, 4.0)]
    out = detect(_view(acts))
    assert out == [Conflict("opposite_direction", "D1", 3.0),
                   Conflict("dso_causes_tso_imbalance", "D1", 4.0)]


def test_opposite_direction_near_misses():
    dso_down = _act("b:down", "D1", "DSO:D1", -1, 4.0)
    # same direction
    same = [_act("a:up", "D1", "TSO", 1, 3.0), _act("b:up", "D1", "DSO:D1", 1, 4.0)]
    assert _kind(detect(_view(same)), "opposite_direction") == []
    # TSO activates both ways in D1, net exactly 0
    zero = [_act("a:up", "D1", "TSO", 1, 3.0), _act("c:down", "D1", "TSO", -1, 3.0), dso_down]
    assert _kind(detect(_view(zero)), "opposite_direction") == []
    # DSO net below 1e-6 MW
    tiny = [_act("a:up", "D1", "TSO", 1, 3.0), _act("b:down", "D1", "DSO:D1", -1, 5e-7)]
    assert detect(_view(tiny)) == []
    # TSO activation in another grid than the DSO's
    other = [_act("a:up", "D2", "TSO", 1, 3.0), dso_down]
    assert _kind(detect(_view(other)), "opposite_direction") == []
    # TSO activation of a T-connected resource
    t_grid = [_act("g:up", "HV1", "TSO", 1, 3.0), dso_down]
    assert _kind(detect(_view(t_grid)), "opposite_direction") == []


def test_brp_and_foreign_dso_activations_do_not_count_for_net_rules():
    # BRP buys down in D1 against the TSO's up: not a TSO-DSO conflict.
    # DSO:D2 buys a resource connected in D1: counts neither as DSO:D1's nor as D2's net.
    acts = [_act("a:up", "D1", "TSO", 1, 3.0), _act("b:down", "D1", "BRP:x", -1, 10.0),
            _act("e:down", "D1", "DSO:D2", -1, 4.0), _act("f:up", "D2", "BRP:x", 1, 2.0)]
    assert detect(_view(acts)) == []
    assert detect(_view(acts, dso_balances_area=True)) == []


# --- tso_causes_dso_violation -------------------------------------------------------------

def _violation_view(acts, dv, dl, vm=(1.00, 1.06, 0.96), loading=(90.0, 104.0)):
    return _view(acts, vm_after={"D1": np.array(vm)}, dv_tso={"D1": np.array(dv)},
                 loading_after={"D1": np.array(loading)}, dl_tso={"D1": np.array(dl)})


def test_tso_created_overvoltage():
    # bus 1: 1.06 > 1.05 now; 1.06 - 0.02 = 1.04 without the TSO -> created.
    # TSO net in D1 = 6 - 2 = 4 MW.
    acts = [_act("a:up", "D1", "TSO", 1, 6.0), _act("c:down", "D1", "TSO", -1, 2.0)]
    out = detect(_violation_view(acts, dv=[0.0, 0.02, 0.0], dl=[0.0, 0.0]))
    assert out == [Conflict("tso_causes_dso_violation", "D1", 4.0)]


def test_tso_created_undervoltage():
    # bus 2: 0.94 < 0.95 now; 0.94 - (-0.015) = 0.955 without the TSO -> created; down 3 MW.
    acts = [_act("a:down", "D1", "TSO", -1, 3.0)]
    out = detect(_violation_view(acts, dv=[0.0, 0.0, -0.015], dl=[0.0, 0.0],
                                 vm=(1.0, 1.0, 0.94)))
    assert out == [Conflict("tso_causes_dso_violation", "D1", 3.0)]


def test_tso_created_overload():
    # branch 1: 104 % > 100 %; 104 - 5 = 99 % without the TSO -> created.
    acts = [_act("a:up", "D1", "TSO", 1, 2.5)]
    out = detect(_violation_view(acts, dv=[0.0, 0.0, 0.0], dl=[0.0, 5.0],
                                 vm=(1.0, 1.0, 1.0)))
    assert out == [Conflict("tso_causes_dso_violation", "D1", 2.5)]


def test_tso_violation_near_misses():
    acts = [_act("a:up", "D1", "TSO", 1, 4.0)]
    # pre-existing violations that the TSO made worse: 1.06 - 0.005 = 1.055 > 1.05 and
    # 104 - 3 = 101 > 100 are violated without the TSO too -> not created.
    assert detect(_violation_view(acts, dv=[0.0, 0.005, 0.0], dl=[0.0, 3.0])) == []
    # on the limit is within it: 1.05 pu and 100 % exactly.
    on_limit = _violation_view(acts, dv=[0.0, 0.02, 0.0], dl=[0.0, 10.0],
                               vm=(1.0, 1.05, 1.0), loading=(90.0, 100.0))
    assert detect(on_limit) == []
    # created violation, but no TSO activation in D1 (the TSO bought in D2 and in T)
    others = [_act("a:up", "D2", "TSO", 1, 4.0), _act("g:up", "HV1", "TSO", 1, 4.0)]
    assert detect(_violation_view(others, dv=[0.0, 0.02, 0.0], dl=[0.0, 5.0])) == []


def test_tso_violation_recorded_once_per_grid():
    # two buses and a branch created at once: one record, volume = |TSO net| = 1.5 MW.
    acts = [_act("a:down", "D1", "TSO", -1, 1.5)]
    out = detect(_violation_view(acts, dv=[0.0, 0.02, -0.03], dl=[0.0, 6.0],
                                 vm=(1.0, 1.06, 0.94)))
    assert out == [Conflict("tso_causes_dso_violation", "D1", 1.5)]


def test_shape_mismatch_is_an_error():
    acts = [_act("a:up", "D1", "TSO", 1, 1.0)]
    with pytest.raises(ValueError, match="shape"):
        detect(_violation_view(acts, dv=[0.0, 0.02], dl=[0.0, 5.0]))


# --- dso_causes_tso_imbalance / interface_schedule_deviation -------------------------------

def test_dso_causes_tso_imbalance_only_without_shared_balancing():
    # DSO:D1 net = 3.5 - 1 = 2.5 MW
    acts = [_act("b:up", "D1", "DSO:D1", 1, 3.5), _act("c:down", "D1", "DSO:D1", -1, 1.0)]
    assert detect(_view(acts)) == [Conflict("dso_causes_tso_imbalance", "D1", 2.5)]
    out = detect(_view(acts, dso_balances_area=True))
    assert _kind(out, "dso_causes_tso_imbalance") == []
    # DSO net exactly 0 -> nothing
    zero = [_act("b:up", "D1", "DSO:D1", 1, 1.0), _act("c:down", "D1", "DSO:D1", -1, 1.0)]
    assert detect(_view(zero)) == []


def test_interface_schedule_deviation():
    # D1 is short 3 MW; its DSO buys up 2 MW -> deviation -3 + 2 = -1 MW (> 0.5 tolerance).
    acts = [_act("b:up", "D1", "DSO:D1", 1, 2.0)]
    out = detect(_view(acts, dso_balances_area=True, area_imbalance_mw={"D1": -3.0}))
    assert out == [Conflict("interface_schedule_deviation", "D1", 1.0)]
    # without shared balancing the schedule rule is off (the DSO activation is the TSO's problem)
    out = detect(_view(acts, dso_balances_area=False, area_imbalance_mw={"D1": -3.0}))
    assert out == [Conflict("dso_causes_tso_imbalance", "D1", 2.0)]


def test_interface_schedule_deviation_near_misses():
    imb = {"D1": -3.0}
    # DSO buys up 2.6 MW -> deviation -0.4 MW, within 0.5 MW
    acts = [_act("b:up", "D1", "DSO:D1", 1, 2.6)]
    assert detect(_view(acts, dso_balances_area=True, area_imbalance_mw=imb)) == []
    # deviation exactly at the tolerance is not a conflict: -3 + 2.5 = -0.5
    acts = [_act("b:up", "D1", "DSO:D1", 1, 2.5)]
    assert detect(_view(acts, dso_balances_area=True, area_imbalance_mw=imb)) == []
    # the DSO over-corrects by 1 MW: -3 + 4 = +1 -> conflict of 1 MW
    acts = [_act("b:up", "D1", "DSO:D1", 1, 4.0)]
    out = detect(_view(acts, dso_balances_area=True, area_imbalance_mw=imb))
    assert out == [Conflict("interface_schedule_deviation", "D1", 1.0)]


def test_interface_deviation_without_any_activation():
    # the DSO of D2 does nothing about a 0.75 MW long area -> 0.75 MW deviation
    out = detect(_view([], dso_balances_area=True, area_imbalance_mw={"D1": 0.25, "D2": 0.75}))
    assert out == [Conflict("interface_schedule_deviation", "D2", 0.75)]


# --- double_activation --------------------------------------------------------------------

def test_double_activation_beyond_offer():
    # s:up offered 5 MW; TSO 3 + DSO:D1 4 = 7 MW -> excess 2 MW (opposite_direction: none,
    # both up; dso_causes_tso_imbalance: DSO net 4 MW).
    acts = [_act("s:up", "D1", "TSO", 1, 3.0), _act("s:up", "D1", "DSO:D1", 1, 4.0)]
    out = detect(_view(acts, offered_mw={"s:up": 5.0}))
    assert out == [Conflict("dso_causes_tso_imbalance", "D1", 4.0),
                   Conflict("double_activation", "D1", 2.0)]


def test_double_activation_counts_brp_and_t_resources():
    # a T-connected resource sold to the TSO and a BRP: 3 + 3.5 = 6.5 MW of 5 offered
    acts = [_act("g:down", "HV1", "TSO", -1, 3.0), _act("g:down", "HV1", "BRP:b", -1, 3.5)]
    out = detect(_view(acts, offered_mw={"g:down": 5.0}))
    assert out == [Conflict("double_activation", "HV1", 1.5)]


def test_double_activation_near_misses():
    acts = [_act("s:up", "D1", "TSO", 1, 3.0), _act("s:up", "D1", "BRP:b", 1, 4.0)]
    assert detect(_view(acts, offered_mw={"s:up": 7.0})) == []
    # excess of 5e-7 MW is below the 1e-6 MW threshold
    assert detect(_view(acts, offered_mw={"s:up": 7.0 - 5e-7})) == []
    # up and down of different physical resources
    ud = [_act("s:up", "D1", "BRP:b", 1, 2.0), _act("t:down", "D1", "BRP:c", -1, 1.0)]
    assert detect(_view(ud)) == []


def test_double_activation_not_offered_at_all():
    # a resource id that offered nothing this step: its whole activation is the excess
    acts = [_act("s:up", "D2", "BRP:b", 1, 1.25)]
    out = detect(_view(acts, offered_mw={"s:up": 0.0}))
    assert out == [Conflict("double_activation", "D2", 1.25)]
    out = detect(StepView(acts, ["D1", "D2"], {}, {}, {}, {}, {}, {}, {}, 0.5, False))
    assert out == [Conflict("double_activation", "D2", 1.25)]


def test_up_and_down_by_different_buyers():
    # physical p: up 2 MW (TSO) and down 1.5 MW (BRP) -> smaller of the two = 1.5 MW
    acts = [_act("p:up", "D2", "TSO", 1, 2.0), _act("p:down", "D2", "BRP:b", -1, 1.5)]
    assert detect(_view(acts)) == [Conflict("double_activation", "D2", 1.5)]
    # two buyers up (TSO 2 + DSO:D2 1), BRP down 4 -> min(3, 4) = 3 MW
    acts = [_act("p:up", "D2", "TSO", 1, 2.0), _act("p:up", "D2", "DSO:D2", 1, 1.0),
            _act("p:down", "D2", "BRP:b", -1, 4.0)]
    assert _kind(detect(_view(acts)), "double_activation") == [
        Conflict("double_activation", "D2", 3.0)]


def test_up_and_down_by_the_same_buyer_is_not_a_conflict():
    acts = [_act("p:up", "D1", "BRP:b", 1, 2.0), _act("p:down", "D1", "BRP:b", -1, 1.5)]
    assert detect(_view(acts)) == []


def test_up_and_down_plus_oversold_gives_two_records():
    # p:up offered 2, sold 2 + 1 = 3 (excess 1); p:down sold 0.5 to the BRP (min(3, 0.5))
    acts = [_act("p:up", "D1", "TSO", 1, 2.0), _act("p:up", "D1", "BRP:a", 1, 1.0),
            _act("p:down", "D1", "BRP:b", -1, 0.5)]
    out = detect(_view(acts, offered_mw={"p:up": 2.0}))
    assert out == [Conflict("double_activation", "D1", 0.5),
                   Conflict("double_activation", "D1", 1.0)]  # "p" sorts before "p:up"


# --- several grids, ordering ----------------------------------------------------------------

def test_several_grids_ordered_by_kind_then_grid():
    acts = [
        # D2: TSO up 5, DSO:D2 down 1 -> opposite 1 MW, DSO imbalance 1 MW
        _act("a2:up", "D2", "TSO", 1, 5.0), _act("b2:down", "D2", "DSO:D2", -1, 1.0),
        # D1: TSO down 2, DSO:D1 up 3 -> opposite 2 MW, DSO imbalance 3 MW
        _act("a1:down", "D1", "TSO", -1, 2.0), _act("b1:up", "D1", "DSO:D1", 1, 3.0),
        # D3: only the DSO, down 0.5 -> DSO imbalance 0.5 MW
        _act("b3:down", "D3", "DSO:D3", -1, 0.5),
        # T: a TSO resource also sold to a BRP beyond its 4 MW offer -> excess 1 MW in HV1
        _act("g:up", "HV1", "TSO", 1, 4.0), _act("g:up", "HV1", "BRP:x", 1, 1.0),
        # D1: c1 sold twice beyond its 1 MW offer (BRP 1 + DSO:D2 1) -> excess 1 MW
        _act("c1:up", "D1", "BRP:x", 1, 1.0), _act("c1:up", "D1", "DSO:D2", 1, 1.0),
    ]
    view = _view(acts, dso_grids=["D3", "D2", "D1"],
                 limits={g: LIMITS for g in ("D1", "D2", "D3")},
                 offered_mw={"g:up": 4.0, "c1:up": 1.0},
                 # D2: bus 0 pushed over 1.05 by the TSO's 5 MW
                 vm_after={"D2": np.array([1.052, 1.0])}, dv_tso={"D2": np.array([0.01, 0.0])})
    assert detect(view) == [
        Conflict("opposite_direction", "D1", 2.0),
        Conflict("opposite_direction", "D2", 1.0),
        Conflict("tso_causes_dso_violation", "D2", 5.0),
        Conflict("dso_causes_tso_imbalance", "D1", 3.0),
        Conflict("dso_causes_tso_imbalance", "D2", 1.0),
        Conflict("dso_causes_tso_imbalance", "D3", 0.5),
        Conflict("double_activation", "D1", 1.0),
        Conflict("double_activation", "HV1", 1.0),
    ]
    # same step under shared balancing: schedule deviations replace the DSO-imbalance records
    # (areas balanced before activations, so the deviation is the DSO's own net activation)
    view.dso_balances_area = True
    out = detect(view)
    assert [c.kind for c in out] == sorted((c.kind for c in out), key=KINDS.index)
    assert _kind(out, "interface_schedule_deviation") == [
        Conflict("interface_schedule_deviation", "D1", 3.0),
        Conflict("interface_schedule_deviation", "D2", 1.0),
    ]  # D3: 0.5 MW is not above the 0.5 MW tolerance
    assert _kind(out, "dso_causes_tso_imbalance") == []


# --- the rules as issue 8 asks: AC counterfactual, joint balance ---------------------------

def test_ac_counterfactual_decides_tso_caused_violations():
    """With the AC state without the TSO's activations, only buses that are in band there
    and out of band after count; the sensitivity estimate is not used."""
    acts = [_act("a:up", "D1", "TSO", 1, 5.0)]
    after = {"D1": np.array([1.06, 1.07, 1.00])}
    loading = {"D1": np.array([50.0])}
    # bus 0 is out of band without the TSO too (not created); bus 1 was in band: created
    without = {"D1": np.array([1.055, 1.04, 1.00])}
    view = _view(acts, vm_after=after, loading_after=loading, dv_tso={"D1": np.zeros(3)},
                 dl_tso={"D1": np.zeros(1)}, vm_without_tso=without,
                 loading_without_tso={"D1": np.array([50.0])})
    assert _kind(detect(view), "tso_causes_dso_violation") == [
        Conflict("tso_causes_dso_violation", "D1", 5.0)]
    # the same after-state, but without the TSO bus 1 was out of band too: nothing created
    view = _view(acts, vm_after=after, loading_after=loading, dv_tso={"D1": np.zeros(3)},
                 dl_tso={"D1": np.zeros(1)}, vm_without_tso={"D1": np.array([1.06, 1.07, 1.0])},
                 loading_without_tso={"D1": np.array([50.0])})
    assert _kind(detect(view), "tso_causes_dso_violation") == []
    # a branch overloaded only with the TSO's activations
    view = _view(acts, vm_after={"D1": np.ones(3)}, loading_after={"D1": np.array([101.0])},
                 dv_tso={}, dl_tso={}, vm_without_tso={"D1": np.ones(3)},
                 loading_without_tso={"D1": np.array([99.0])})
    assert _kind(detect(view), "tso_causes_dso_violation") == [
        Conflict("tso_causes_dso_violation", "D1", 5.0)]


def test_no_dso_caused_imbalance_where_the_balance_is_cleared_jointly():
    acts = [_act("b:down", "D1", "DSO:D1", -1, 4.0)]
    assert _kind(detect(_view(acts)), "dso_causes_tso_imbalance") == [
        Conflict("dso_causes_tso_imbalance", "D1", 4.0)]
    assert _kind(detect(_view(acts, joint_balance=True)), "dso_causes_tso_imbalance") == []


def _partition(keys) -> list[list[int]]:
    """Positions grouped by equal key, groups in order of first occurrence."""
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return list(groups.values())


@pytest.mark.parametrize("max_ids", [1 << 18, 3])
def test_resource_numbers_tell_slots_and_physical_resources_apart(monkeypatch, max_ids):
    """The double-activation rule groups a step's activations by slot and by physical
    resource through numbers kept across steps: equal numbers exactly for equal ids (and
    equal physical resources), also when the tables are cleared because they grew too big."""
    monkeypatch.setattr(conflicts, "_NUMBERS", {})
    monkeypatch.setattr(conflicts, "_PHYSICAL", {})
    monkeypatch.setattr(conflicts, "_MAX_IDS", max_ids)
    steps = [["p:up", "q:down", "p:up", "p:down", "r"], ["q:up", "p:down", "s:up", "q:up"],
             ["r", "t:down", "r"], []]
    for ids in steps:
        slot, physical = conflicts._numbers(ids)
        assert slot.dtype == physical.dtype == np.int64
        assert _partition(slot.tolist()) == _partition(ids)
        assert _partition(physical.tolist()) == _partition([physical_resource(r) for r in ids])
    if max_ids > 3:  # numbers are kept from step to step while the tables have room
        first, _ = conflicts._numbers(["p:up", "q:down"])
        again, _ = conflicts._numbers(["q:down", "p:up"])
        assert first.tolist() == again.tolist()[::-1]
