"""Row screening of the market LP (`MarketLP._screen`): HiGHS holds only the network rows that
can reach a bound with the step's offers, and the optimum is the full LP's. Checked on steps
with real distribution congestion (tiny, 21 July 2016 11:00: an overloaded MV line), where D
rows bind, against the same runs with every row kept."""

from __future__ import annotations

import numpy as np
import pytest
from tsodso.coordination.lp import DRows, MarketLP
from tsodso.coordination.market import DState, FlexMarket

from tests.conftest import make_scenario
from tsodso.runner import run

STRESS = "2016-07-21T11:00:00"


def _record(monkeypatch) -> list[dict]:
    """Every solve's activations, objective, D-row duals and HiGHS's row count."""
    out: list[dict] = []
    solve = MarketLP.solve

    def recorded(self, cost):
        sol = solve(self, cost)
        d_rows = np.concatenate([self.row_positions(k) for k in ("v_up", "v_dn", "l_up")])
        out.append(dict(name=self.name, x=self.values(sol, "x"),
                        obj=self.highs.getInfo().objective_function_value,
                        d_binding=int(np.sum(np.abs(sol.row_dual[d_rows]) > 1e-6)),
                        rows=self.highs.getNumRow(), all_rows=len(self._pos)))
        return sol

    monkeypatch.setattr(MarketLP, "solve", recorded)
    return out


@pytest.mark.parametrize("scheme", ["common", "integrated"])
def test_screened_lp_clears_as_the_full_lp_on_congested_steps(tmp_path, monkeypatch, scheme):
    sc = make_scenario(steps=3, start=STRESS)
    got = {}
    for screen in (True, False):
        with monkeypatch.context() as mp:
            mp.setattr(MarketLP, "screen", screen)
            got[screen] = _record(mp)
            run(sc, scheme, tmp_path / f"{scheme}-{screen}.h5")
    scr, full = got[True], got[False]
    assert len(scr) == len(full) > 0
    assert any(s["d_binding"] for s in full)  # D rows bind: the steps are congested
    assert any(s["rows"] < s["all_rows"] for s in scr)  # rows were left out
    assert all(s["rows"] == s["all_rows"] for s in full)
    for s, f in zip(scr, full, strict=True):
        assert s["name"] == f["name"]
        np.testing.assert_allclose(s["x"], f["x"], rtol=0, atol=1e-6)
        assert s["obj"] == pytest.approx(f["obj"], rel=1e-9, abs=1e-9)
        assert s["d_binding"] == f["d_binding"]


def test_rows_out_of_reach_are_left_out_and_come_back_when_offers_grow():
    """One D bus, two pools: 0.01 pu/MW and 0.002 pu/MW, 0.05 pu of headroom. With 2 MW
    offered each the row can rise by at most 0.024 pu: left out, and the cheap pool clears
    the need. With 10 MW each it can rise by 0.12 pu: the upper row comes in, and binds (the
lower one cannot be reached by up activations) (x0 + 0.2 x1 <= 5,
    need 8 MW: x0 = 5 - 0.2 x1 and x1 = 3.75 at the optimum, 10 EUR vs 20 EUR/MWh)."""
    dr = [DRows("D1", np.array([0, 1]), np.array([[0.01, 0.002]]), np.zeros((0, 2)),
                np.zeros(0))]
    mk = FlexMarket(np.array([1.0, 1.0]), np.full(2, -1), 0.25, 1e4, 1e4, 1e4, drows=dr,
                    areas={"system": np.arange(2)})
    st = {"D1": DState(np.array([1.0]), np.zeros(0), 0.9, 1.05, 100.0)}
    price = np.array([10.0, 20.0])
    mk.lp.near_share = None  # the box reach alone
    r = mk.clear(np.array([2.0, 2.0]), price, need={"system": 3.0}, d_state=st)
    assert mk.lp.highs.getNumRow() == 1  # the balance only: both voltage rows out of reach
    assert np.allclose(r.x, [2.0, 1.0])
    r = mk.clear(np.array([10.0, 10.0]), price, need={"system": 8.0}, d_state=st)
    assert mk.lp.highs.getNumRow() == 2  # the upper voltage row; the lower one stays out
    assert np.allclose(r.x, [4.25, 3.75])
    assert mk.lp.n_screen_misses == 0


def _one_bus_market() -> tuple[FlexMarket, dict]:
    """The market of the test above: one D bus, pools of 0.01 and 0.002 pu/MW, 0.05 pu of
    headroom."""
    dr = [DRows("D1", np.array([0, 1]), np.array([[0.01, 0.002]]), np.zeros((0, 2)),
                np.zeros(0))]
    mk = FlexMarket(np.array([1.0, 1.0]), np.full(2, -1), 0.25, 1e4, 1e4, 1e4, drows=dr,
                    areas={"system": np.arange(2)})
    return mk, {"D1": DState(np.array([1.0]), np.zeros(0), 0.9, 1.05, 100.0)}


def test_row_far_from_its_bound_at_the_last_solution_is_left_out_then_added_back():
    """The last-solution rule (`near_share`): after the first step (x = [2, 1], the voltage
    row at 0.022 pu of its 0.05), 10 MW offered each give the row a reach of 0.12 pu, but at
    the last solution it is 0.028 pu from its bound, more than 2 % of that reach (0.0024): it
    stays out. The solve without it takes the cheap pool to 8 MW (0.08 pu > 0.05): the row is
    found violated, added, and the LP solved again, to the full LP's optimum (x0 + 0.2 x1 = 5,
    x0 + x1 = 8: x = [4.25, 3.75]), with the full LP's duals."""
    price = np.array([10.0, 20.0])
    got = {}
    for share in (0.02, "full"):
        mk, st = _one_bus_market()
        if share == "full":
            mk.lp.screen = False  # the instance only: HiGHS keeps every row
        else:
            mk.lp.near_share = share
        mk.clear(np.array([2.0, 2.0]), price, need={"system": 3.0}, d_state=st)
        rows_before = mk.lp.highs.getNumRow()
        r = mk.clear(np.array([10.0, 10.0]), price, need={"system": 8.0}, d_state=st)
        got[share] = (mk.lp, rows_before, r)
    lp, rows_before, r = got[0.02]
    assert rows_before == 1  # the balance only
    assert lp.n_screen_misses == 1  # the upper voltage row: left out, violated, added
    assert lp.highs.getNumRow() == 2  # ... and only that one (the lower one stays out)
    np.testing.assert_allclose(r.x, [4.25, 3.75], atol=1e-9)
    full_lp, _, full = got["full"]
    np.testing.assert_allclose(r.x, full.x, atol=1e-9)
    np.testing.assert_allclose(r.value, full.value, atol=1e-9)  # duals as the full LP's
    for cause, part in full.parts.items():
        np.testing.assert_allclose(r.parts[cause], part, atol=1e-9)
    assert full_lp.n_screen_misses == 0


def test_last_solution_rule_reads_refreshed_coefficients():
    """The last-solution rule takes the row's activity at this step's coefficients: after a
    refresh makes the bus 0.024 pu/MW sensitive to the cheap pool, the last solution
    x = [2, 1] sits on the row's bound (0.05 pu), so the row is held in HiGHS from the start
    (no miss); the clearing is the full LP's: 0.024 x0 + 0.002 x1 = 0.05, x0 + x1 = 8."""
    price = np.array([10.0, 20.0])
    got = {}
    for screen in (True, False):
        mk, st = _one_bus_market()
        mk.lp.screen = screen
        mk.clear(np.array([2.0, 2.0]), price, need={"system": 3.0}, d_state=st)
        mk.update_drows([DRows("D1", np.array([0, 1]), np.array([[0.024, 0.002]]),
                               np.zeros((0, 2)), np.zeros(0))])
        got[screen] = (mk.lp, mk.clear(np.array([10.0, 10.0]), price, need={"system": 8.0},
                                       d_state=st))
    lp, r = got[True]
    assert lp.n_screen_misses == 0
    np.testing.assert_allclose(r.x, [0.034 / 0.022, 8 - 0.034 / 0.022], atol=1e-9)
    np.testing.assert_allclose(r.x, got[False][1].x, atol=1e-9)


def test_check_after_the_solve_reads_only_rows_a_solution_could_bring_near_a_bound():
    """With the box reach alone, a left-out row's reach stayed clear of its bounds, so a
    solution inside the box cannot violate it: the check after the solve skips it (`_sure`).
    One D bus: with 2 MW offered each its voltage can rise by 0.024 pu of 0.05 and fall by
    nothing of 0.1, so both rows are left out and sure at the optimum. A column vector outside
    the box (the cheap pool at 6 MW: 0.06 + 0.002 = 0.062 pu > 0.05) makes no row sure, and
    the upper row is found violated, as by reading every left-out row; a row whose own slack
    is not 0 is not sure either."""
    mk, st = _one_bus_market()
    lp = mk.lp
    lp.near_share = None
    mk.clear(np.array([2.0, 2.0]), np.array([10.0, 20.0]), need={"system": 3.0}, d_state=st)
    up, dn = lp.row_positions("v_up")[0], lp.row_positions("v_dn")[0]
    out = np.flatnonzero(lp._pos < 0)
    assert sorted(out.tolist()) == sorted([up, dn])
    col = lp._last_col
    assert lp._sure(col, out).all()
    assert len(lp._violated(col)) == 0
    outside = col.copy()
    outside[lp.col_index["x"]] = [6.0, 1.0]
    assert not lp._sure(outside, out).any()
    assert lp._violated(outside).tolist() == [up]
    slack = col.copy()
    slack[lp.col_index["ovu"][0]] = 0.5  # the upper row's own overvoltage slack
    assert lp._sure(slack, out).tolist() == [r != up for r in out]
