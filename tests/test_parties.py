"""The BRP rows of `define_parties` (one per direction, parties sharing it pro rata) against
the per-party LP they replace, every activation bought by a party of its direction: the same
optimal cost and activations on small cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog
from tsodso.coordination.families import side_needs
from tsodso.coordination.market import FlexMarket

PEN = 150.0  # EUR/MWh at which the parties value an open position
STEP_H = 0.25


def per_party_lp(direction, price, mw, need, ptdf_row, lo, hi):
    """The per-party LP: x_p, y_bp (only in the party's direction), short/long per party;
    sum_b y_bp = x_p, sum_p dir_p y_bp + qs_b - ql_b = need_b, lo <= ptdf_row . (dir x) <= hi."""
    n, nb = len(price), len(need)
    nv = n + nb * n + 2 * nb
    c = np.r_[price, np.zeros(nb * n), np.full(2 * nb, PEN)]
    a_ub, b_ub, share = [], [], []
    for p in range(n):
        row = np.zeros(nv)
        row[p] = -1.0
        row[n + p: n + nb * n: n] = 1.0
        share.append(row)
    t = np.zeros(nv)
    t[:n] = ptdf_row * direction
    a_ub += [t, -t]
    b_ub += [hi, -lo]
    a_eq = np.zeros((nb, nv))
    y_ub = []
    for b in range(nb):
        y_ub += [None if d == np.sign(need[b]) else 0.0 for d in direction]
        a_eq[b, n + b * n: n + (b + 1) * n] = direction
        a_eq[b, n + nb * n + b] = 1.0
        a_eq[b, n + nb * n + nb + b] = -1.0
    bounds = [(0.0, m) for m in mw] + [(0.0, u) for u in y_ub] + [(0.0, None)] * (2 * nb)
    res = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.vstack([a_eq, share]),
                  b_eq=np.r_[need, np.zeros(n)], bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun, res.x[:n]


def test_side_needs_sum_each_direction():
    assert side_needs(np.array([3.0, -2.0, 1.5, 0.0, -0.5])).tolist() == [4.5, -2.5]
    assert side_needs(np.array([-1.0])).tolist() == [0.0, -1.0]


@pytest.mark.parametrize("seed", range(12))
def test_direction_rows_clear_as_the_per_party_lp(seed):
    rng = np.random.default_rng(seed)
    n, names = 8, ["BRP:a", "BRP:b", "BRP:c"]
    direction = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    bus = rng.integers(0, 3, n)
    ptdf = np.array([[0.0, 0.6, -0.4]])  # one line; bus 0 is the slack
    price = rng.permutation(np.arange(n)) * 7.0 + 20.0  # distinct: one optimal x
    price[rng.integers(n)] = 170.0  # one offer dearer than an open position
    mw = rng.uniform(1.0, 6.0, n)
    need = rng.uniform(-12.0, 12.0, len(names))
    if seed % 3 == 0:
        need[1] = np.sign(need[0]) * 4.0  # two parties needing the same direction
    limit, flow0 = 2.0, rng.uniform(-1.5, 1.5)
    mk = FlexMarket(direction, bus, STEP_H, PEN, 1e5, 40.0, ptdf=ptdf, parties=names,
                    party_penalty=PEN)
    r = mk.clear(mw, price, t_flow0=np.array([flow0]), t_limit=np.array([limit]),
                 party_need=dict(zip(names, need.tolist(), strict=True)))
    served = np.array([direction @ r.party_x[b] for b in names])
    cost = price @ r.x + PEN * np.abs(need - served).sum()
    ref_cost, ref_x = per_party_lp(direction, price, mw, need, ptdf[0, bus], -limit - flow0,
                                   limit - flow0)
    # the tie-breaking perturbation is at most TIE_EPS * n EUR/MWh: far below 1e-6 here
    assert cost == pytest.approx(ref_cost, rel=1e-6, abs=1e-6)
    assert np.allclose(r.x, ref_x, atol=1e-6)
    # each party buys only in its own direction, never more than it needs, and the parties
    # needing one direction get the same share of each of its pools
    for b, q in zip(names, need, strict=True):
        assert np.all(r.party_x[b][direction != np.sign(q)] == 0.0)
        assert abs(served[names.index(b)]) <= abs(q) + 1e-9
    same = [b for b, q in zip(names, need, strict=True) if q > 0]
    if len(same) == 2:
        q = dict(zip(names, need, strict=True))
        assert np.allclose(r.party_x[same[0]] * q[same[1]], r.party_x[same[1]] * q[same[0]])
    assert np.allclose(sum(r.party_x.values()), r.x)  # every activation is bought
