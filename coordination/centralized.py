"""Centralized AS market: the TSO clears all T and D bids against its balancing need.

Transmission constraints enter through PTDFs (DC model); distribution constraints are ignored
(that is the point of the scheme). The LP is built once per run as one pyomo model, handed once
to pyomo's persistent HiGHS interface (``pyomo.contrib.solver.solvers.highs.Highs``: the class
``SolverFactory('highs')`` wraps in pyomo 6.10) and re-solved each step from the previous basis
after pushing the step's data into the existing model (no rebuild).

The market, in MW (objective in EUR/h; the reported objective is x step_h, in EUR)::

    min  sum_i price_i x_i + pen_imb (short + long) + pen_over sum_l over_l
    s.t. 0 <= x_i <= mw_i                                        (activated MW per slot)
         sum_i dir_i x_i + short - long = need                   (balance; dual = price)
         |flow0_l + sum_i PTDF[l, t_bus_i] dir_i x_i| <= limit_l + over_l,  over_l >= 0

How it is written for the solver (same optimum, cheaper per-step updates):

- per-step data: ``price`` -> mutable Param ``cost`` (objective coefficients); ``need`` ->
  mutable Param; ``flow0``/``limit`` -> mutable Params ``lo = -limit - flow0`` and
  ``hi = limit - flow0`` (branch row bounds); ``mw`` -> the upper bound of ``x`` set with
  ``setub`` (the persistent interface pushes changed bounds in one vectorised call; a Param
  bound is re-evaluated through a min/max expression per variable, ~30 % slower per clear);
- slots are aggregated to their T bus (``p_b = sum_{i at b} dir_i x_i``), so the dense PTDF
  block is (branches x used buses) instead of (branches x slots);
- branch rows: ``lo_l <= sum_b PTDF[l, b] p_b - up_l + dn_l <= hi_l``, ``over_l = up_l + dn_l``;
- branches no slot bus can move (all their PTDF entries ~0) are left out of the LP; their
  overload is the constant ``max(0, |flow0| - limit)``, still reported and costed.

Ties: equal-price slots are ranked by slot index (lower index activated first). When offered
slots share a price, the LP is first solved with prices raised by ``TIE_EPS * rank`` (rank in
(price, slot) order, so different prices keep their order), which makes the optimum unique and
independent of the warm-start history; it is then re-solved from that basis with the true
prices for the exact dual (normally zero simplex iterations). Otherwise one solve is made.
The perturbation is at most ``TIE_EPS * n_slot`` (0.02 EUR/MWh for 2,000 slots); prices,
objective and settlement use the true prices.

Robustness: every solve is checked (status, and reduced-cost signs against the bounds); a
warm-started HiGHS 1.15 run that fails the check (seen: status "unknown", or a claimed optimum
that is not dual feasible, on tied prices) is repeated on a fresh HiGHS model (cold start,
counted in ``n_cold_restarts``). Every step is feasible thanks to the slack variables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs
from pyomo.core.expr.numeric_expr import LinearExpression
from tsodso.coordination.bid import BidBook

TIE_EPS = 1e-5  # EUR/MWh per rank step of the tie-breaking perturbation (above HiGHS tolerances)
PTDF_TOL = 1e-9  # PTDF entries below this (MW/MW) are treated as zero
_ZERO_MW = 1e-6  # reported MW below this are set to zero (solver noise)
_RC_TOL = 1e-6  # EUR/MWh: reduced-cost sign tolerance of the optimality check (< TIE_EPS)


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


class CentralizedMarket:
    """The TSO's market over all bid slots of ``book`` with T network constraints.

    ``ptdf_matrix`` is (n_branch, n_bus) with columns addressed by ``book.t_bus``. The LP and
    the solver are built here once (``build_model_s``/``build_solver_s`` record the time);
    :meth:`clear` only updates the model's data and re-solves. ``book`` fixes the slots
    (``t_bus``, ``direction``); its ``mw``/``price`` are not read: :meth:`clear` gets them.
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

        # buses carrying slots, and the branches those buses can move
        self.buses = np.unique(book.t_bus)
        h_used = self.ptdf[:, self.buses]
        h_used = np.where(np.abs(h_used) > PTDF_TOL, h_used, 0.0)
        self.modelled = np.flatnonzero(np.any(h_used != 0.0, axis=1))
        # flow change per MW activated, per slot (direction included), for reporting
        self._slot_ptdf = self.ptdf[:, book.t_bus] * self._dir

        m = pyo.ConcreteModel(name="centralized")
        m.I = pyo.RangeSet(0, n - 1)
        m.B = pyo.RangeSet(0, len(self.buses) - 1)
        m.L = pyo.RangeSet(0, len(self.modelled) - 1)
        m.cost = pyo.Param(m.I, mutable=True, initialize=0.0)  # EUR/MWh
        m.need = pyo.Param(mutable=True, initialize=0.0)
        m.lo = pyo.Param(m.L, mutable=True, initialize=-1e9)  # -limit - flow0
        m.hi = pyo.Param(m.L, mutable=True, initialize=1e9)  # limit - flow0

        m.x = pyo.Var(m.I, bounds=(0.0, 0.0))  # ub = mw, set per step
        m.p = pyo.Var(m.B)
        m.short = pyo.Var(within=pyo.NonNegativeReals)
        m.long = pyo.Var(within=pyo.NonNegativeReals)
        m.up = pyo.Var(m.L, within=pyo.NonNegativeReals)
        m.dn = pyo.Var(m.L, within=pyo.NonNegativeReals)

        bus_pos = np.searchsorted(self.buses, book.t_bus)
        slots_at: list[list[int]] = [[] for _ in range(len(self.buses))]
        for i, b in enumerate(bus_pos.tolist()):
            slots_at[b].append(i)
        dirs = book.direction.astype(float).tolist()

        def inj_rule(m, b):
            idx = slots_at[b]
            return LinearExpression(
                linear_coefs=[dirs[i] for i in idx] + [-1.0],
                linear_vars=[m.x[i] for i in idx] + [m.p[b]],
            ) == 0.0

        m.inj = pyo.Constraint(m.B, rule=inj_rule)
        m.balance = pyo.Constraint(
            expr=LinearExpression(
                linear_coefs=[1.0] * len(self.buses) + [1.0, -1.0],
                linear_vars=[m.p[b] for b in m.B] + [m.short, m.long],
            ) == m.need
        )

        def branch_rule(m, k):
            row = h_used[self.modelled[k]]
            nz = np.flatnonzero(row)
            body = LinearExpression(
                linear_coefs=row[nz].tolist() + [-1.0, 1.0],
                linear_vars=[m.p[int(b)] for b in nz] + [m.up[k], m.dn[k]],
            )
            return pyo.inequality(m.lo[k], body, m.hi[k])

        m.branch = pyo.Constraint(m.L, rule=branch_rule)
        pen_imb = float(penalties.imbalance_eur_per_mwh)
        pen_over = float(penalties.overload_eur_per_mwh)
        nl = len(self.modelled)
        m.obj = pyo.Objective(
            expr=LinearExpression(
                linear_coefs=[m.cost[i] for i in m.I] + [pen_imb, pen_imb] + [pen_over] * 2 * nl,
                linear_vars=[m.x[i] for i in m.I] + [m.short, m.long]
                + [m.up[k] for k in m.L] + [m.dn[k] for k in m.L],
            ),
            sense=pyo.minimize,
        )
        self.model = m
        self._x = [m.x[i] for i in m.I]
        # every column, for the optimality check: x, p (free), then the >= 0 slacks
        self._vars = (self._x + [m.p[b] for b in m.B] + [m.short, m.long]
                      + [m.up[k] for k in m.L] + [m.dn[k] for k in m.L])
        n_free = len(self.buses)
        self._lb_fixed = np.r_[np.full(n_free, -np.inf), np.zeros(2 + 2 * nl)]
        self._ub_fixed = np.full(n_free + 2 + 2 * nl, np.inf)
        self.build_model_s = time.perf_counter() - t0

        t1 = time.perf_counter()
        solver = Highs()
        cfg = solver.config
        # the structure never changes: only Param values and x upper bounds change per step
        au = cfg.auto_updates
        au.check_for_new_or_removed_constraints = False
        au.check_for_new_or_removed_vars = False
        au.check_for_new_or_removed_params = False
        au.check_for_new_objective = False
        au.update_constraints = False
        au.update_vars = True
        au.update_named_expressions = False
        au.update_objective = False
        au.update_parameters = True
        cfg.load_solutions = False
        cfg.raise_exception_on_nonoptimal_result = False
        cfg.solver_options = {"output_flag": False, "threads": 1}
        solver.set_instance(m)
        self.solver = solver
        self.build_solver_s = time.perf_counter() - t1
        self.n_solves = 0
        self.n_cold_restarts = 0

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
        m = self.model

        for v, ub in zip(self._x, mw.tolist(), strict=True):
            v.setub(ub)
        m.need.set_value(float(need_mw))
        f0, lim = flow0[self.modelled], limit[self.modelled]
        m.lo.store_values(dict(enumerate((-lim - f0).tolist())), check=False)
        m.hi.store_values(dict(enumerate((lim - f0).tolist())), check=False)

        offered = np.round(price[mw > 0.0], 6)
        ties = len(np.unique(offered)) < len(offered)
        if ties:
            order = np.lexsort((np.arange(self.n_slot), price))
            rank = np.empty(self.n_slot)
            rank[order] = np.arange(self.n_slot)
            res, values = self._solve(price + TIE_EPS * rank, mw)
        else:
            res, values = self._solve(price, mw)
        x = np.clip(values[: self.n_slot], 0.0, mw)
        x[x < _ZERO_MW] = 0.0
        if ties and exact_prices:
            res, _ = self._solve(price, mw)  # same basis, true prices: exact dual
        marginal = float(res.solution_loader.get_duals([m.balance])[m.balance])
        # locational value of each slot's MW: its price minus its reduced cost (the nodal
        # price in its direction, including congestion)
        value = price - self._last_rc[: self.n_slot]

        unserved = float(need_mw) - float(self._dir @ x)
        if abs(unserved) < _ZERO_MW:
            unserved = 0.0
        flow = flow0 + self._slot_ptdf @ x
        overload = np.maximum(np.abs(flow) - limit, 0.0)
        overload[overload < _ZERO_MW] = 0.0
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
            marginal_price=marginal,
            objective=objective,
            status="optimal",
            flow_mw=flow,
            value=value,
        )

    def _solve(self, cost: np.ndarray, mw: np.ndarray):
        """Solve with objective coefficients ``cost`` (warm start from the last basis).

        HiGHS 1.15 can end a warm-started dual simplex with status "unknown" or claim
        optimality at a basis that is not dual feasible (seen after cost changes on tied
        prices; cf. ERGO-Code/HiGHS#1561, #3194). So the result is checked (reduced-cost signs
        against the bounds) and, if it fails, solved again from a fresh HiGHS model.
        """
        self.model.cost.store_values(dict(enumerate(cost.tolist())), check=False)
        res = self.solver.solve(self.model)
        self.n_solves += 1
        values = self._optimal_values(res, mw)
        if values is None:
            self.n_cold_restarts += 1
            self.solver.set_instance(self.model)  # new HiGHS model: no basis, presolve on
            res = self.solver.solve(self.model)
            self.n_solves += 1
            values = self._optimal_values(res, mw)
            if values is None:
                raise RuntimeError(
                    f"centralized market LP not solved: {res.termination_condition.name}"
                )
        return res, values

    def _optimal_values(self, res, mw: np.ndarray) -> np.ndarray | None:
        """Column values if ``res`` is optimal and its reduced costs have the right signs
        (>= 0 at a lower bound, <= 0 at an upper bound, 0 in between), else None."""
        if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
            return None
        loader = res.solution_loader
        val_map = loader.get_vars(self._vars)
        rc_map = loader.get_reduced_costs(self._vars)
        val = np.array([val_map[v] for v in self._vars], dtype=float)
        rc = np.array([rc_map[v] for v in self._vars], dtype=float)
        self._last_rc = rc
        lb = np.r_[np.zeros(self.n_slot), self._lb_fixed]
        ub = np.r_[mw, self._ub_fixed]
        tol_x = 1e-7 * (1.0 + np.abs(val))
        at_lb = val <= lb + tol_x
        at_ub = val >= ub - tol_x
        tol = _RC_TOL
        bad = (at_lb & ~at_ub & (rc < -tol)) | (at_ub & ~at_lb & (rc > tol)) \
            | (~at_lb & ~at_ub & (np.abs(rc) > tol))
        return None if bad.any() else val
