"""Paired evaluation: every strategy runs on the same shocks, all episodes at once."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_order_execution.market import FloatArray, MarketParams, MarketState, market_step
from rl_order_execution.strategies import Strategy

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Trajectories:
    """One strategy on E episodes: inventory q (E, N+1), trades n, execution prices px and
    rewards r (E, N), mid prices S (E, N+1)."""

    q: FloatArray
    n: FloatArray
    px: FloatArray
    r: FloatArray
    S: FloatArray

    def shortfall(self, p: MarketParams) -> FloatArray:
        """IS = Q*P0 - sum_k n_k * P~_k in $, per episode."""
        shortfall: FloatArray = p.notional - (self.n * self.px).sum(axis=1)
        return shortfall

    def cost(self, p: MarketParams) -> FloatArray:
        """Risk-adjusted cost C = IS + lambda * sum_k q_k^2 / Q in $, per episode."""
        penalty = p.lam * (self.q[:, :-1] ** 2).sum(axis=1) / p.Q
        cost: FloatArray = self.shortfall(p) + penalty
        return cost


def rollout(p: MarketParams, strategy: Strategy, shocks: FloatArray) -> Trajectories:
    """Run a strategy on every episode of `shocks` (E, N) in lockstep."""
    E, N = shocks.shape
    s = MarketState.initial(p, E)
    q, S = np.empty((E, N + 1)), np.empty((E, N + 1))
    n, px, r = np.zeros((E, N)), np.zeros((E, N)), np.zeros((E, N))
    q[:, 0], S[:, 0] = s.q, s.S
    for k in range(N):
        res = market_step(p, s, strategy(p, s), shocks[:, k])
        n[:, k], px[:, k], r[:, k] = res.n, res.exec_price, res.reward
        q[:, k + 1], S[:, k + 1] = s.q, s.S
    return Trajectories(q=q, n=n, px=px, r=r, S=S)


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def summary(values: FloatArray, p: MarketParams, prefix: str) -> dict[str, Any]:
    """Mean, std and standard error in $ and in bps."""
    mean, std = float(values.mean()), float(values.std(ddof=1))
    se = std / math.sqrt(len(values))
    return {
        f"{prefix}_mean": mean,
        f"{prefix}_std": std,
        f"{prefix}_se": se,
        f"{prefix}_mean_bps": mean * p.bps,
        f"{prefix}_std_bps": std * p.bps,
    }


def savings_stats(baseline: FloatArray, values: FloatArray, p: MarketParams) -> dict[str, Any]:
    """MODEL.md's paired statistics of s_i = baseline_i - value_i (positive = cheaper)."""
    s = baseline - values
    mean, std = float(s.mean()), float(s.std(ddof=1))
    half = Z95 * std / math.sqrt(len(s))
    return {
        "avg_savings": mean,
        "avg_savings_bps": mean * p.bps,
        "savings_std": std,
        "information_ratio": _none_if_nan(mean / std) if std > 0 else None,
        "win_rate": float((values < baseline).mean()),
        "var_95": float(np.percentile(s, 5)),
        "var_95_bps": float(np.percentile(s, 5)) * p.bps,
        "ci95_low": mean - half,
        "ci95_high": mean + half,
        "ci95_low_bps": (mean - half) * p.bps,
        "ci95_high_bps": (mean + half) * p.bps,
    }


@dataclass(frozen=True)
class Evaluation:
    """Per-episode results of several strategies on one shared set of shocks."""

    params: MarketParams
    trajectories: dict[str, Trajectories]

    @property
    def episodes(self) -> int:
        return int(next(iter(self.trajectories.values())).q.shape[0])

    def metrics(self, baseline: str = "twap") -> dict[str, dict[str, Any]]:
        p = self.params
        base = self.trajectories[baseline]
        base_is, base_c = base.shortfall(p), base.cost(p)
        out: dict[str, dict[str, Any]] = {}
        for name, tr in self.trajectories.items():
            is_, c = tr.shortfall(p), tr.cost(p)
            m = {**summary(is_, p, "is"), **summary(c, p, "cost")}
            m["savings_is"] = savings_stats(base_is, is_, p)
            m["savings_cost"] = savings_stats(base_c, c, p)
            out[name] = m
        return out


def evaluate(p: MarketParams, strategies: Sequence[Strategy], shocks: FloatArray) -> Evaluation:
    return Evaluation(p, {st.name: rollout(p, st, shocks) for st in strategies})
