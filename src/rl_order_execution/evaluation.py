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
CHUNK_EPISODES = 20_000  # episodes rolled out at once in an evaluation (bounded memory)
SAMPLE_PATHS = 10_000  # full paths kept per strategy for the plots


@dataclass(frozen=True)
class Trajectories:
    """One strategy on E episodes: inventory q (E, N+1), trades n, execution prices px and
    rewards r (E, N), mid prices S (E, N+1)."""

    q: FloatArray
    n: FloatArray
    px: FloatArray
    r: FloatArray
    S: FloatArray

    def head(self, episodes: int) -> Trajectories:
        """A copy of the first `episodes` episodes (not a view: the rest can be freed)."""
        return Trajectories(
            *(np.array(x[:episodes]) for x in (self.q, self.n, self.px, self.r, self.S))
        )

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
    # filled step by step as contiguous rows (k, E), handed out as (E, k) views
    q, S = np.empty((N + 1, E)), np.empty((N + 1, E))
    n, px, r = np.empty((N, E)), np.empty((N, E)), np.empty((N, E))
    z = np.ascontiguousarray(shocks.T)
    q[0], S[0] = s.q, s.S
    for k in range(N):
        res = market_step(p, s, strategy(p, s), z[k])
        n[k], px[k], r[k] = res.n, res.exec_price, res.reward
        q[k + 1], S[k + 1] = s.q, s.S
    return Trajectories(q=q.T, n=n.T, px=px.T, r=r.T, S=S.T)


def standard_error(x: FloatArray, antithetic: bool = False) -> float:
    """SE of the mean; with antithetic pairs (i, i + E/2) the pair averages are the i.i.d. units."""
    if antithetic:
        half = len(x) // 2
        x = (x[:half] + x[half:]) / 2
    return float(x.std(ddof=1)) / math.sqrt(len(x))


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def summary(
    values: FloatArray, p: MarketParams, prefix: str, antithetic: bool = False
) -> dict[str, Any]:
    """Mean, std and standard error in $ and in bps."""
    mean, std = float(values.mean()), float(values.std(ddof=1))
    se = standard_error(values, antithetic)
    return {
        f"{prefix}_mean": mean,
        f"{prefix}_std": std,
        f"{prefix}_se": se,
        f"{prefix}_mean_bps": mean * p.bps,
        f"{prefix}_std_bps": std * p.bps,
    }


def savings_stats(
    baseline: FloatArray, values: FloatArray, p: MarketParams, antithetic: bool = False
) -> dict[str, Any]:
    """MODEL.md's paired statistics of s_i = baseline_i - value_i (positive = cheaper)."""
    s = baseline - values
    mean, std = float(s.mean()), float(s.std(ddof=1))
    se = standard_error(s, antithetic)
    half = Z95 * se
    z = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    p_value = math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else 0.0
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
        "se": se,
        "p_value": p_value,  # paired two-sided test of mean savings = 0 (normal approximation)
        "significant": bool(p_value < 0.05),
    }


def negligible(p: MarketParams) -> float:
    """1e-6 bp of the arrival notional, in $: differences below it are float rounding."""
    return 1e-6 / p.bps


def gap_captured(
    baseline: FloatArray,
    values: FloatArray,
    exact_gap: float,
    antithetic: bool = False,
    floor: float = 0.0,
) -> dict[str, float] | None:
    """(C_TWAP - C) / (C_TWAP - C_opt) with a paired 95 % interval; exact_gap = E[C_TWAP - C_opt].

    None when the optimum's advantage over TWAP is not larger than the noise of the estimate or
    than `floor` (float rounding: with lambda = 0 and mu = 0 the optimum is TWAP itself).
    """
    s = baseline - values
    se = standard_error(s, antithetic)
    if exact_gap <= max(2 * se, floor, 1e-12):
        return None
    mean = float(s.mean())
    return {
        "value": mean / exact_gap,
        "ci95_low": (mean - Z95 * se) / exact_gap,
        "ci95_high": (mean + Z95 * se) / exact_gap,
        "exact_gap": exact_gap,
    }


@dataclass(frozen=True)
class Outcomes:
    """One strategy's per-episode results in $: implementation shortfall and risk-adjusted cost."""

    shortfall: FloatArray  # (E,)
    cost: FloatArray  # (E,)


@dataclass(frozen=True)
class Evaluation:
    """Per-episode results of several strategies on one shared set of shocks.

    `outcomes` covers every episode; `trajectories` keeps the full paths of the first
    SAMPLE_PATHS episodes only (for the plots), so memory does not grow with E x N.
    """

    params: MarketParams
    outcomes: dict[str, Outcomes]
    trajectories: dict[str, Trajectories]
    strategies: tuple[Strategy, ...] = ()
    antithetic: bool = False

    @property
    def episodes(self) -> int:
        return len(next(iter(self.outcomes.values())).cost)

    def metrics(
        self, baseline: str = "twap", exact_gap: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per strategy: IS and cost statistics, paired savings vs the baseline and, given the
        exact E[C_TWAP] - E[C_opt], the share of it captured."""
        p = self.params
        base_is, base_c = self.outcomes[baseline].shortfall, self.outcomes[baseline].cost
        out: dict[str, dict[str, Any]] = {}
        for name, o in self.outcomes.items():
            is_, c = o.shortfall, o.cost
            anti = self.antithetic
            m = {**summary(is_, p, "is", anti), **summary(c, p, "cost", anti)}
            m["savings_is"] = savings_stats(base_is, is_, p, anti)
            m["savings_cost"] = savings_stats(base_c, c, p, anti)
            if exact_gap is not None:
                m["gap_captured"] = gap_captured(base_c, c, exact_gap, anti, negligible(p))
            out[name] = m
        return out

    def beats_optimum(self, optimum: str = "optimal", n_se: float = 3.0) -> list[str]:
        """Strategies whose cost is below the exact optimum's by more than n_se paired standard
        errors: impossible for a non-anticipating strategy, so a look-ahead leak or a bug.

        Differences below `negligible` are float rounding. With lots the rounded "optimum" is no
        longer optimal (a lot-aware schedule may beat it), so every strategy is compared with the
        continuous optimum's exact E[C] instead: a lower bound that no lot-rounded strategy beats.
        """
        if optimum not in self.outcomes:
            return []
        p = self.params
        if p.lot_size > 0:
            from rl_order_execution.analytics import optimal_cost

            bound = optimal_cost(p)
            return [name for name, o in self.outcomes.items() if self._below(o.cost - bound, n_se)]
        best = self.outcomes[optimum].cost
        return [
            name
            for name, o in self.outcomes.items()
            if name != optimum and self._below(o.cost - best, n_se)
        ]

    def _below(self, d: FloatArray, n_se: float) -> bool:
        """Mean of d below zero by more than n_se standard errors and more than float rounding."""
        se = standard_error(d, self.antithetic)
        return float(d.mean()) < -max(n_se * se, negligible(self.params))


def evaluate(
    p: MarketParams, strategies: Sequence[Strategy], shocks: FloatArray, antithetic: bool = False
) -> Evaluation:
    """Every strategy on the same shocks; `antithetic` says how shocks were drawn (for SEs).

    Episodes run in blocks of CHUNK_EPISODES (episodes are independent, so the numbers do not
    depend on the block size) and only per-episode results and the sample paths are kept.
    """
    outcomes, paths = {}, {}
    for st in strategies:
        shortfall, cost = [], []
        for start in range(0, len(shocks), CHUNK_EPISODES):
            tr = rollout(p, st, shocks[start : start + CHUNK_EPISODES])
            shortfall.append(tr.shortfall(p))
            cost.append(tr.cost(p))
            if start == 0:
                paths[st.name] = tr.head(SAMPLE_PATHS)
        outcomes[st.name] = Outcomes(np.concatenate(shortfall), np.concatenate(cost))
    return Evaluation(p, outcomes, paths, tuple(strategies), antithetic)
