"""The best deterministic action sequence on the configured grid, as a strategy."""

from __future__ import annotations

import numpy as np

from rl_order_execution.exact.discrete import best_discrete_policy
from rl_order_execution.market import FloatArray, MarketParams, MarketState, desired_from_actions


class BestDiscreteStrategy:
    """The best deterministic action sequence on the configured grid (martingale prices)."""

    name = "best-discrete"

    def __init__(self, p: MarketParams) -> None:
        self.policy = best_discrete_policy(p)

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        actions = self.policy.actions[np.minimum(s.k, p.N - 1)]
        return desired_from_actions(p, s, actions)
