"""The exact optimum of E[C]: linear-quadratic dynamic programming on x = (q, S, 1).

The price model supplies the step x' = (F0 + xi F1) z; everything else is the same Riccati
recursion for every model. Where the model's state holds more than (q, S) (GARCH with drift) the
transition is marked inexact and so is the solution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl_order_execution.market import FloatArray, MarketParams


@dataclass(frozen=True)
class LQSolution:
    """Feedback n_k = gains[k] @ (q, S, 1) and value matrices V_k(x) = x' values[k] x."""

    params: MarketParams
    gains: FloatArray
    values: FloatArray
    exact: bool = True

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


def _stage_matrix(p: MarketParams, k: int) -> FloatArray:
    """Stage cost n (P0 - S + beta_k n) + lam q^2 / Q of step k as z' L z, z = (q, S, 1, n)."""
    L = np.zeros((4, 4))
    L[0, 0] = p.lam / p.Q
    L[3, 3] = p.betas[k]  # beta itself on a flat profile
    L[2, 3] = L[3, 2] = p.P0 / 2
    L[1, 3] = L[3, 1] = -0.5
    return L


def _q_function(p: MarketParams, P_next: FloatArray, k: int) -> FloatArray:
    """E[stage cost of step k + V_{k+1}(x')] as z' H z, exact for the multiplicative or additive
    shock."""
    t = p.prices.lq_transition(p)
    F0, F1, e1, e2 = t.F0, t.F1, t.e1, t.e2
    cross = F0.T @ P_next @ F1
    H = _stage_matrix(p, k) + F0.T @ P_next @ F0 + e1 * (cross + cross.T) + e2 * F1.T @ P_next @ F1
    out: FloatArray = 0.5 * (H + H.T)
    return out


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
    H = _q_function(p, values[p.N], p.N - 1)
    values[p.N - 1] = T.T @ H @ T
    for k in range(p.N - 2, -1, -1):
        gains[k], values[k] = _minimise(_q_function(p, values[k + 1], k))
    return LQSolution(p, gains, values, p.prices.lq_transition(p).exact)


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
