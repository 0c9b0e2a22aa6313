"""The exact optimum as a strategy (the LQ feedback), and its rounding to the action grid."""

from __future__ import annotations

import numpy as np

from rl_order_execution.exact.lq import LQSolution, solve_lq
from rl_order_execution.market import (
    FloatArray,
    MarketParams,
    MarketState,
    base_rate,
    desired_from_actions,
)


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
