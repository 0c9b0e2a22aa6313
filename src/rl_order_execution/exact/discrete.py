"""The best deterministic policy on the action grid (martingale prices): exact dynamic
programming over inventories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from rl_order_execution.exact.moments import schedule_moments
from rl_order_execution.exact.schedules import step_impact
from rl_order_execution.market import (
    FloatArray,
    IntArray,
    MarketParams,
    MarketState,
    desired_from_actions,
    trade_size,
)

ValueFn = Callable[[FloatArray], FloatArray]
TREE_LIMIT = 200_000
GRID_POINTS = 4001


@dataclass(frozen=True)
class DiscretePolicy:
    """Best deterministic action sequence, its trades, exact E[C] ($) and the DP method used."""

    actions: IntArray
    trades: FloatArray
    expected_cost: float
    method: str


def action_trades(p: MarketParams, k: int, q: FloatArray, action: int) -> FloatArray:
    """What the market trades for one action index at step k from inventories q."""
    q = np.asarray(q, dtype=np.float64)
    s = MarketState(
        k=np.full(q.shape, k, dtype=np.int64),
        q=q,
        S=np.full(q.shape, p.P0),
        S_prev=np.full(q.shape, p.P0),
        latent=p.prices.initial_latent(p, q.size).reshape(q.shape),
    )
    actions = np.full(q.shape, action, dtype=np.int64)
    return trade_size(p, s, desired_from_actions(p, s, actions))


def _step_costs(p: MarketParams, k: int, q: FloatArray, value_next: ValueFn) -> FloatArray:
    """(A, M) cost-to-go of each action from inventories q: eta_k n^2 + lam q^2/Q + V_{k+1}."""
    rows = []
    for a in range(p.n_actions):
        n = action_trades(p, k, q, a)
        rows.append(step_impact(p, k) * n * n + p.lam * q * q / p.Q + value_next(q - n))
    return np.array(rows)


def _quadratic(c: float, q: FloatArray) -> FloatArray:
    """c q^2."""
    out: FloatArray = c * q * q
    return out


def _homogeneous_values(p: MarketParams) -> list[ValueFn]:
    """Exact V_k(q) = v_k q^2: with rate_basis 'remaining' and no lots, trades scale with q."""
    v = [0.0] * (p.N + 1)
    for k in range(p.N - 1, -1, -1):
        costs = _step_costs(p, k, np.ones(1), partial(_quadratic, v[k + 1]))
        v[k] = float(costs.min())
    return [partial(_quadratic, c) for c in v]


def _reachable_levels(p: MarketParams) -> list[FloatArray] | None:
    """Distinct inventories reachable at each step, or None when the tree gets too large."""
    levels, total, tol = [np.array([p.Q])], 1, 1e-9 * p.Q
    for k in range(p.N - 1):
        nxt = [levels[-1] - action_trades(p, k, levels[-1], a) for a in range(p.n_actions)]
        x = np.sort(np.concatenate(nxt))
        x = x[np.concatenate(([True], np.diff(x) > tol))]
        total += x.size
        if total > TREE_LIMIT:
            return None
        levels.append(x)
    return levels


def _interpolate(nodes: FloatArray, values: FloatArray, q: FloatArray) -> FloatArray:
    """Piecewise-linear value function through (nodes, values), evaluated at q."""
    return np.asarray(np.interp(q, nodes, values), dtype=np.float64)


def _tabulated_values(p: MarketParams, levels: list[FloatArray]) -> list[ValueFn]:
    """Backward DP on per-step inventory nodes, V_{k+1} read by linear interpolation."""
    values: list[ValueFn] = [partial(_quadratic, 0.0)] * (p.N + 1)
    for k in range(p.N - 1, -1, -1):
        v = _step_costs(p, k, levels[k], values[k + 1]).min(axis=0)
        values[k] = partial(_interpolate, levels[k], v)
    return values


def _value_functions(p: MarketParams) -> tuple[list[ValueFn], str]:
    """Exact homogeneous values, else the exact reachable tree, else a fine inventory grid."""
    if p.rate_basis == "remaining" and p.lot_size == 0:
        return _homogeneous_values(p), "homogeneous"
    levels = _reachable_levels(p)
    if levels is not None:
        return _tabulated_values(p, levels), "tree"
    grid = [np.array([p.Q])] + [np.linspace(0.0, p.Q, GRID_POINTS)] * (p.N - 1)
    return _tabulated_values(p, grid), "grid"


def best_discrete_policy(p: MarketParams) -> DiscretePolicy:
    """Best deterministic action sequence where prices are a martingale (then no adaptive policy
    does better in expectation); its E[C] is evaluated exactly."""
    if not p.prices.is_martingale(p):
        raise ValueError(
            "the best discrete policy is computed for martingale prices only "
            "(gbm, jump or garch with drift 0)"
        )
    values, method = _value_functions(p)
    actions, trades, q = np.zeros(p.N, dtype=np.int64), np.zeros(p.N), np.array([p.Q])
    for k in range(p.N):
        actions[k] = int(np.argmin(_step_costs(p, k, q, values[k + 1])[:, 0]))
        trades[k] = action_trades(p, k, q, int(actions[k]))[0]
        q = q - trades[k]
    return DiscretePolicy(actions, trades, schedule_moments(p, trades).e_c, method)
