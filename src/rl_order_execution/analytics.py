"""Exact benchmarks of MODEL.md: schedule moments, Almgren-Chriss, the linear-quadratic optimum,
the best discrete-action schedule and simple reference strategies."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np

from rl_order_execution.market import (
    FloatArray,
    IntArray,
    MarketParams,
    MarketState,
    base_rate,
    desired_from_actions,
    trade_size,
)
from rl_order_execution.strategies import TWAP, Strategy

ValueFn = Callable[[FloatArray], FloatArray]
DETERMINISTIC = ("twap", "almgren-chriss", "pov", "front-loaded", "back-loaded", "best-discrete")
POV_FRACTION = 0.1
TREE_LIMIT = 200_000
GRID_POINTS = 4001


# ---------------------------------------------------------------------------------------------
# Deterministic schedules and their exact moments
# ---------------------------------------------------------------------------------------------


class ScheduleMoments(NamedTuple):
    """Exact E[IS], Var[IS] and E[C] ($) of a deterministic schedule."""

    e_is: float
    var_is: float
    e_c: float

    @property
    def std_is(self) -> float:
        return math.sqrt(max(self.var_is, 0.0))


class ExactCost(NamedTuple):
    """Exact E[IS], Std[IS] and E[C] ($) of a named deterministic reference strategy."""

    name: str
    e_is: float
    std_is: float
    e_c: float


def inventory_path(p: MarketParams, trades: FloatArray) -> FloatArray:
    """Inventory q_0..q_N left by the trades n_0..n_{N-1}."""
    return p.Q - np.concatenate(([0.0], np.cumsum(trades)))


def trades_from_inventory(q: FloatArray) -> FloatArray:
    """Trades n_k = q_k - q_{k+1} of an inventory path."""
    return -np.diff(np.asarray(q, dtype=np.float64))


def _eta(p: MarketParams) -> float:
    """Effective quadratic impact beta - alpha/2 of a deterministic schedule."""
    return p.beta - p.alpha / 2


def _ac_kappa(p: MarketParams) -> float:
    """kappa_ac with cosh(kappa_ac) = 1 + lam / (2 Q (beta - alpha/2)), computed without 0/0."""
    if _eta(p) <= 0:
        raise ValueError("Almgren-Chriss needs beta > alpha / 2")
    x = p.lam / (2 * p.Q * _eta(p))
    return math.log1p(x + math.sqrt(x * (2 + x)))


def almgren_chriss_schedule(p: MarketParams) -> FloatArray:
    """Inventory q_0..q_N of the discrete Almgren-Chriss schedule (TWAP when lam = 0)."""
    k = np.arange(p.N + 1, dtype=np.float64)
    c = _ac_kappa(p)
    if c == 0.0:
        return p.Q * (p.N - k) / p.N
    # sinh(c(N-k)) / sinh(cN) written with expm1 so neither tiny nor huge c under/overflows
    q: FloatArray = p.Q * np.exp(-c * k) * np.expm1(-2 * c * (p.N - k)) / np.expm1(-2 * c * p.N)
    return q


def _check_schedule(p: MarketParams, trades: FloatArray) -> FloatArray:
    """The trades as float64 (N,), which must sum to Q."""
    n = np.asarray(trades, dtype=np.float64)
    if n.shape != (p.N,):
        raise ValueError(f"a schedule needs {p.N} trades, got shape {n.shape}")
    if abs(float(n.sum()) - p.Q) > 1e-6 * max(p.Q, 1.0):
        raise ValueError(f"trades sum to {float(n.sum())}, not Q = {p.Q}")
    return n


def price_moments(p: MarketParams, trades: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Exact mean (N,) and covariance (N, N) of the mid prices S_0..S_{N-1} under a schedule."""
    n = np.asarray(trades, dtype=np.float64)
    mean, var = np.empty(p.N), np.zeros(p.N)
    mean[0], theta = p.P0, p.P0
    if p.price_model == "gbm":
        a, m2 = math.exp(p.mu), math.exp(2 * p.mu + p.sigma**2)
    else:
        a = math.exp(-p.kappa)
    for k in range(p.N - 1):
        if p.price_model == "gbm":
            mean[k + 1] = a * mean[k] - p.alpha * n[k]
            var[k + 1] = m2 * var[k] + (m2 - a * a) * mean[k] ** 2
        else:
            mean[k + 1] = theta + a * (mean[k] - theta) - p.alpha * n[k]
            var[k + 1] = a * a * var[k] + p.ou_noise**2
            theta -= p.alpha * n[k]
    row, col = np.meshgrid(np.arange(p.N), np.arange(p.N), indexing="ij")
    cov = var[np.minimum(row, col)] * a ** np.abs(col - row).astype(np.float64)
    return mean, cov


def schedule_moments(p: MarketParams, trades: FloatArray) -> ScheduleMoments:
    """Exact (E[IS], Var[IS], E[C]) in $ of a deterministic schedule n_0..n_{N-1} summing to Q."""
    n = _check_schedule(p, trades)
    mean, cov = price_moments(p, n)
    e_is = p.notional - float(n @ mean) + p.beta * float(n @ n)
    q = inventory_path(p, n)[:-1]
    return ScheduleMoments(e_is, float(n @ cov @ n), e_is + p.lam * float(q @ q) / p.Q)


def efficient_frontier(
    p: MarketParams, lambdas: Sequence[float]
) -> list[tuple[float, float, float]]:
    """(lam, E[IS], Std[IS]) of the Almgren-Chriss schedule for each risk aversion lam."""
    out = []
    for lam in lambdas:
        q = almgren_chriss_schedule(p.with_(lam=float(lam)))
        m = schedule_moments(p, trades_from_inventory(q))
        out.append((float(lam), m.e_is, m.std_is))
    return out


def twap_schedule(p: MarketParams) -> FloatArray:
    """TWAP trades Q/N."""
    return np.full(p.N, p.Q / p.N)


def linear_schedule(p: MarketParams, front: bool) -> FloatArray:
    """Trades decreasing (front) or increasing (back) linearly in k, summing to Q."""
    k = np.arange(p.N, dtype=np.float64)
    w = p.N - k if front else k + 1
    n: FloatArray = p.Q * w / w.sum()
    return n


def pov_schedule(p: MarketParams, fraction: float) -> FloatArray:
    """Trades of selling fraction * q_k per step, everything left at the last step."""
    q = p.Q * (1 - fraction) ** np.arange(p.N, dtype=np.float64)
    n = fraction * q
    n[-1] = q[-1]
    return n


# ---------------------------------------------------------------------------------------------
# The exact optimum: linear-quadratic dynamic programming on x = (q, S, 1)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LQSolution:
    """Feedback n_k = gains[k] @ (q, S, 1) and value matrices V_k(x) = x' values[k] x."""

    params: MarketParams
    gains: FloatArray
    values: FloatArray

    @property
    def x0(self) -> FloatArray:
        return np.array([self.params.Q, self.params.P0, 1.0])

    @property
    def expected_cost(self) -> float:
        """E[C_opt] from the start state, x0' P_0 x0 ($)."""
        return float(self.x0 @ self.values[0] @ self.x0)

    def value(self, k: int, q: float, S: float) -> float:
        """Optimal expected cost-to-go from (q, S) at step k (OU level theta = P0 - alpha (Q-q))."""
        x = np.array([q, S, 1.0])
        return float(x @ self.values[k] @ x)

    @property
    def is_deterministic(self) -> bool:
        """True when the feedback ignores the price (then the schedule is deterministic)."""
        return bool(np.all(np.abs(self.gains[:, 1]) * self.params.P0 <= 1e-9 * self.params.Q))


def _stage_matrix(p: MarketParams) -> FloatArray:
    """Stage cost n (P0 - S + beta n) + lam q^2 / Q as z' L z with z = (q, S, 1, n)."""
    L = np.zeros((4, 4))
    L[0, 0] = p.lam / p.Q
    L[3, 3] = p.beta
    L[2, 3] = L[3, 2] = p.P0 / 2
    L[1, 3] = L[3, 1] = -0.5
    return L


def _transition(p: MarketParams) -> tuple[FloatArray, FloatArray, float, float]:
    """x' = (F0 + xi F1) z with E[xi] = e1, E[xi^2] = e2: the exact step of MODEL.md."""
    F0 = np.array([[1.0, 0, 0, -1], [0, 0, 0, -p.alpha], [0, 0, 1, 0]])
    F1 = np.zeros((3, 4))
    if p.price_model == "gbm":
        F1[1, 1] = 1.0
        return F0, F1, math.exp(p.mu), math.exp(2 * p.mu + p.sigma**2)
    d = math.exp(-p.kappa)
    F0[1, :3] = [(1 - d) * p.alpha, d, (1 - d) * (p.P0 - p.alpha * p.Q)]
    F1[1, 2] = p.ou_noise
    return F0, F1, 0.0, 1.0


def _q_function(p: MarketParams, P_next: FloatArray) -> FloatArray:
    """E[stage cost + V_{k+1}(x')] as z' H z, exact for the multiplicative or additive shock."""
    F0, F1, e1, e2 = _transition(p)
    cross = F0.T @ P_next @ F1
    H = _stage_matrix(p) + F0.T @ P_next @ F0 + e1 * (cross + cross.T) + e2 * F1.T @ P_next @ F1
    return 0.5 * (H + H.T)


def _minimise(H: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gain g (n = g @ x) and value matrix of min_n z' H z."""
    h_xn, h_nn = H[:3, 3], H[3, 3]
    if h_nn <= 0:
        raise ValueError("the expected cost is not convex in the trade; no LQ optimum")
    P = H[:3, :3] - np.outer(h_xn, h_xn) / h_nn
    return -h_xn / h_nn, 0.5 * (P + P.T)


def solve_lq(p: MarketParams) -> LQSolution:
    """Backward Riccati recursion; the last step sells what is left (n = q)."""
    gains, values = np.zeros((p.N, 3)), np.zeros((p.N + 1, 3, 3))
    T = np.vstack([np.eye(3), [1.0, 0.0, 0.0]])
    gains[-1] = [1.0, 0.0, 0.0]
    H = _q_function(p, values[p.N])
    values[p.N - 1] = T.T @ H @ T
    for k in range(p.N - 2, -1, -1):
        gains[k], values[k] = _minimise(_q_function(p, values[k + 1]))
    return LQSolution(p, gains, values)


def optimal_cost(p: MarketParams) -> float:
    """E[C_opt] ($): the exact optimum of the expected risk-adjusted cost (trades unconstrained)."""
    return solve_lq(p).expected_cost


def optimal_schedule(p: MarketParams) -> FloatArray:
    """Trades of the optimal policy where it is deterministic (e.g. martingale GBM)."""
    sol = solve_lq(p)
    if not sol.is_deterministic:
        raise ValueError("the optimal policy depends on the price; it has no fixed schedule")
    n, q = np.empty(p.N), p.Q
    for k in range(p.N):
        n[k] = sol.gains[k, 0] * q + sol.gains[k, 2]
        q -= n[k]
    return n


class OptimalStrategy:
    """The LQ feedback n_k = a_k q + b_k S + c_k; counts how often the market's clip binds."""

    name = "optimal"

    def __init__(self, tolerance: float = 1e-9) -> None:
        self.tolerance = tolerance
        self.clipped = 0
        self.decisions = 0
        self._solution: LQSolution | None = None

    def solution(self, p: MarketParams) -> LQSolution:
        """The Riccati solution for p (cached)."""
        if self._solution is None or self._solution.params != p:
            self._solution = solve_lq(p)
        return self._solution

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        g = self.solution(p).gains[np.minimum(s.k, p.N - 1)]
        n: FloatArray = g[:, 0] * s.q + g[:, 1] * s.S + g[:, 2]
        self._count(p, s, n)
        return n

    def _count(self, p: MarketParams, s: MarketState, n: FloatArray) -> None:
        """Count live (episode, step) pairs (order open, k < N-1), and those outside [0, q]."""
        live = (s.k < p.N - 1) & (s.q > 0)
        tol = self.tolerance * p.Q
        outside = (n < -tol) | (n > s.q + tol)
        self.decisions += int(live.sum())
        self.clipped += int((live & outside).sum())

    @property
    def clip_share(self) -> float:
        """Share of live decisions where the unconstrained trade was clipped to [0, q]."""
        return self.clipped / self.decisions if self.decisions else 0.0

    def reset_counts(self) -> None:
        self.clipped = 0
        self.decisions = 0


# ---------------------------------------------------------------------------------------------
# The best deterministic policy on the action grid (martingale GBM)
# ---------------------------------------------------------------------------------------------


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
        theta=np.full(q.shape, p.P0),
    )
    actions = np.full(q.shape, action, dtype=np.int64)
    return trade_size(p, s, desired_from_actions(p, s, actions))


def _step_costs(p: MarketParams, k: int, q: FloatArray, value_next: ValueFn) -> FloatArray:
    """(A, M) cost-to-go of each action from inventories q: eta n^2 + lam q^2/Q + V_{k+1}."""
    rows = []
    for a in range(p.n_actions):
        n = action_trades(p, k, q, a)
        rows.append(_eta(p) * n * n + p.lam * q * q / p.Q + value_next(q - n))
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
    """Best deterministic action sequence for martingale GBM; its E[C] is evaluated exactly."""
    if p.price_model != "gbm" or p.mu != 0:
        raise ValueError("the best discrete policy is computed for martingale GBM only (mu = 0)")
    values, method = _value_functions(p)
    actions, trades, q = np.zeros(p.N, dtype=np.int64), np.zeros(p.N), np.array([p.Q])
    for k in range(p.N):
        actions[k] = int(np.argmin(_step_costs(p, k, q, values[k + 1])[:, 0]))
        trades[k] = action_trades(p, k, q, int(actions[k]))[0]
        q = q - trades[k]
    return DiscretePolicy(actions, trades, schedule_moments(p, trades).e_c, method)


def capture_share(p: MarketParams, cost: float) -> float:
    """(C_TWAP - C) / (C_TWAP - C_opt): the share of the possible improvement over TWAP."""
    c_twap = schedule_moments(p, twap_schedule(p)).e_c
    return (c_twap - cost) / (c_twap - optimal_cost(p))


# ---------------------------------------------------------------------------------------------
# Reference strategies (the Strategy protocol of strategies.py)
# ---------------------------------------------------------------------------------------------


class SnappedOptimalStrategy:
    """The exact optimum's trade rounded to the nearest action of the grid: a reference for what
    a discrete-action policy can reach where the optimum is adaptive (not an upper bound)."""

    name = "optimal-snapped"

    def __init__(self) -> None:
        self.optimal = OptimalStrategy()

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        wanted = self.optimal(p, s)
        ratio = wanted / np.maximum(base_rate(p, s), 1e-12)
        actions = np.abs(ratio[:, None] - np.asarray(p.multipliers)[None, :]).argmin(axis=1)
        return desired_from_actions(p, s, actions)


class ScheduleStrategy:
    """Follow a fixed schedule of trades n_0..n_{N-1}."""

    def __init__(self, name: str, trades: FloatArray) -> None:
        self.name = name
        self.trades = np.asarray(trades, dtype=np.float64)

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.trades[np.minimum(s.k, self.trades.size - 1)]
        return out


class BestDiscreteStrategy:
    """The best deterministic action sequence on the configured grid (martingale GBM)."""

    name = "best-discrete"

    def __init__(self, p: MarketParams) -> None:
        self.policy = best_discrete_policy(p)

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        actions = self.policy.actions[np.minimum(s.k, p.N - 1)]
        return desired_from_actions(p, s, actions)


class POV:
    """Participation: sell a fixed fraction of the remaining inventory each step."""

    name = "pov"

    def __init__(self, fraction: float = POV_FRACTION) -> None:
        self.fraction = fraction

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.fraction * s.q
        return out


def _is_martingale_gbm(p: MarketParams) -> bool:
    return p.price_model == "gbm" and p.mu == 0


def reference_strategies(p: MarketParams) -> list[Strategy]:
    """TWAP, Almgren-Chriss, the optimum, best-discrete (martingale GBM), POV and linear ramps."""
    out: list[Strategy] = [
        TWAP(),
        ScheduleStrategy("almgren-chriss", reference_schedule(p, "almgren-chriss")),
        OptimalStrategy(),
    ]
    if _is_martingale_gbm(p):
        out.append(BestDiscreteStrategy(p))
    out += [
        POV(POV_FRACTION),
        ScheduleStrategy("front-loaded", linear_schedule(p, front=True)),
        ScheduleStrategy("back-loaded", linear_schedule(p, front=False)),
    ]
    return out


def reference_schedule(p: MarketParams, name: str) -> FloatArray:
    """Trades of a deterministic reference strategy (optimal only where it is deterministic)."""
    schedules: dict[str, Callable[[], FloatArray]] = {
        "twap": lambda: twap_schedule(p),
        "almgren-chriss": lambda: trades_from_inventory(almgren_chriss_schedule(p)),
        "pov": lambda: pov_schedule(p, POV_FRACTION),
        "front-loaded": lambda: linear_schedule(p, front=True),
        "back-loaded": lambda: linear_schedule(p, front=False),
        "best-discrete": lambda: best_discrete_policy(p).trades,
        "optimal": lambda: optimal_schedule(p),
    }
    if name not in schedules:
        raise ValueError(f"no deterministic schedule named {name!r}")
    return schedules[name]()


def exact_cost(p: MarketParams, name: str) -> ExactCost:
    """Exact E[IS], Std[IS], E[C] ($) of a deterministic reference strategy."""
    m = schedule_moments(p, reference_schedule(p, name))
    return ExactCost(name, m.e_is, m.std_is, m.e_c)
