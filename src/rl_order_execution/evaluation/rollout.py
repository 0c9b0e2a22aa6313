"""Paired evaluation: every strategy runs on the same shocks, all episodes at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rl_order_execution.evaluation.statistics import (
    StrategyMetrics,
    VolumeMetrics,
    gap_captured,
    negligible,
    savings_stats,
    standard_error,
    summary,
    volume_metrics,
)
from rl_order_execution.market import FloatArray, MarketParams, MarketState, Shocks, market_step
from rl_order_execution.strategies import OptimalStrategy, Strategy

CHUNK_EPISODES = 20_000  # episodes rolled out at once in an evaluation (bounded memory)
SAMPLE_PATHS = 10_000  # full paths kept per strategy for the plots


@dataclass(frozen=True)
class Trajectories:
    """One strategy on E episodes: inventory q (E, N+1), trades n, execution prices px and
    rewards r (E, N), mid prices S (E, N+1); on replayed bars also each episode's market volume
    v (E, N) (the market's profile otherwise)."""

    q: FloatArray
    n: FloatArray
    px: FloatArray
    r: FloatArray
    S: FloatArray
    v: FloatArray | None = None

    def head(self, episodes: int) -> Trajectories:
        """A copy of the first `episodes` episodes (not a view: the rest can be freed)."""
        q, n, px, r, S = (np.array(x[:episodes]) for x in (self.q, self.n, self.px, self.r, self.S))
        v = None if self.v is None else np.array(self.v[:episodes])
        return Trajectories(q, n, px, r, S, v)

    def volume(self, p: MarketParams) -> FloatArray:
        """The market's volume v_k of each episode's steps, (E, N) or (N,) for all alike."""
        return p.volume if self.v is None else self.v

    def shortfall(self, p: MarketParams) -> FloatArray:
        """IS = Q*P0 - sum_k n_k * P~_k in $, per episode."""
        shortfall: FloatArray = p.notional - (self.n * self.px).sum(axis=1)
        return shortfall

    def cost(self, p: MarketParams) -> FloatArray:
        """Risk-adjusted cost C = IS + lambda * sum_k q_k^2 / Q in $, per episode."""
        penalty = p.lam * (self.q[:, :-1] ** 2).sum(axis=1) / p.Q
        cost: FloatArray = self.shortfall(p) + penalty
        return cost

    def market_vwap(self, p: MarketParams) -> FloatArray:
        """VWAP_mkt = sum_k v_k S_k / sum_k v_k over all N steps, per episode. The rollout keeps
        stepping an episode whose order is done (n_k = 0), so its mids S_k are there to the end."""
        return self._mean_over_volume(p, self.S[:, : p.N])

    def vwap_slippage(self, p: MarketParams) -> FloatArray:
        """(VWAP_mkt - sum_k n_k P~_k / Q) / VWAP_mkt in bps, per episode (positive: sold below
        the market's VWAP). VWAP_mkt includes our own permanent impact (MODEL.md), so selling
        early pushes it down and can look like beating it: see `vwap_slippage_ex_impact`."""
        return self._slippage(p, self.market_vwap(p))

    def market_vwap_ex_impact(self, p: MarketParams) -> FloatArray:
        """The market's VWAP without our own impact, per episode: VWAP_mkt's sum over the mids
        with our permanent impact alpha * (Q - q_k) (the shares sold before step k) added back."""
        mids = self.S[:, : p.N] + p.alpha * (p.Q - self.q[:, : p.N])
        return self._mean_over_volume(p, mids)

    def vwap_slippage_ex_impact(self, p: MarketParams) -> FloatArray:
        """VWAP slippage against the market's VWAP without our own impact (bps, per episode;
        positive: sold below it): the benchmark a trader is measured against, which our own
        selling does not move, so front-loading cannot look like a saving."""
        return self._slippage(p, self.market_vwap_ex_impact(p))

    def _slippage(self, p: MarketParams, vwap: FloatArray) -> FloatArray:
        average_price = (self.n * self.px).sum(axis=1) / p.Q
        slippage: FloatArray = (vwap - average_price) / vwap * 1e4
        return slippage

    def _mean_over_volume(self, p: MarketParams, x: FloatArray) -> FloatArray:
        """sum_k v_k x_k / sum_k v_k per episode, weighted as `market_vwap` weights the mids."""
        if self.v is None:
            out: FloatArray = x @ p.volume / p.volume.sum()
            return out
        total = self.v.sum(axis=1)  # a window without volume: the plain mean
        weights = np.where(total[:, None] > 0, self.v, 1.0)
        mean: FloatArray = (x * weights).sum(axis=1) / weights.sum(axis=1)
        return mean

    def participation(self, p: MarketParams) -> tuple[FloatArray, FloatArray]:
        """Per episode: the mean over the N steps and the maximum of n_k / v_k (inf for a trade in
        a step without market volume)."""
        v = self.volume(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(self.n > 0, self.n / np.where(v > 0, v, 0.0), 0.0)
        return rate.mean(axis=1), rate.max(axis=1)


def rollout(p: MarketParams, strategy: Strategy, shocks: Shocks) -> Trajectories:
    """Run a strategy on every episode of `shocks` (E episodes, N steps) in lockstep (replayed
    windows: episode i replays window i of shocks.windows)."""
    E, N = len(shocks), shocks.horizon
    s = MarketState.initial(p, E, shocks.windows)
    # filled step by step as contiguous rows (k, E), handed out as (E, k) views
    q, S = np.empty((N + 1, E)), np.empty((N + 1, E))
    n, px, r = np.empty((N, E)), np.empty((N, E)), np.empty((N, E))
    steps = shocks.steps()
    q[0], S[0] = s.q, s.S
    for k in range(N):
        res = market_step(p, s, strategy(p, s), steps[k])
        n[k], px[k], r[k] = res.n, res.exec_price, res.reward
        q[k + 1], S[k + 1] = s.q, s.S
    v = None if shocks.windows is None else shocks.windows.volume
    return Trajectories(q=q.T, n=n.T, px=px.T, r=r.T, S=S.T, v=v)


@dataclass(frozen=True)
class Outcomes:
    """One strategy's per-episode results: implementation shortfall and risk-adjusted cost in $;
    VWAP slippage (bps; against VWAP_mkt, and against the market's VWAP without our own impact)
    and participation (mean and max of n_k / v_k) where measured."""

    shortfall: FloatArray  # (E,)
    cost: FloatArray  # (E,)
    vwap_slippage: FloatArray | None = None  # (E,)
    participation_mean: FloatArray | None = None  # (E,)
    participation_max: FloatArray | None = None  # (E,)
    vwap_slippage_ex_impact: FloatArray | None = None  # (E,), against the VWAP without our impact

    @staticmethod
    def of(p: MarketParams, trajectories: Trajectories) -> Outcomes:
        """The per-episode results of a block of episodes."""
        participation_mean, participation_max = trajectories.participation(p)
        return Outcomes(
            shortfall=trajectories.shortfall(p),
            cost=trajectories.cost(p),
            vwap_slippage=trajectories.vwap_slippage(p),
            participation_mean=participation_mean,
            participation_max=participation_max,
            vwap_slippage_ex_impact=trajectories.vwap_slippage_ex_impact(p),
        )

    @staticmethod
    def concatenate(blocks: Sequence[Outcomes]) -> Outcomes:
        """Consecutive blocks of episodes as one (optional results only where every block has
        them)."""
        values: dict[str, Any] = {}
        for f in fields(Outcomes):
            parts = [getattr(b, f.name) for b in blocks]
            values[f.name] = None if any(x is None for x in parts) else np.concatenate(parts)
        return Outcomes(**values)


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
    ) -> dict[str, StrategyMetrics]:
        """Per strategy: IS and cost statistics, paired savings vs the baseline and, given the
        exact E[C_TWAP] - E[C_opt], the share of the optimum's advantage captured: on these
        episodes, against the optimum's own, where it was evaluated (`gap_captured`)."""
        p, anti = self.params, self.antithetic
        base = self.outcomes[baseline]
        optimum = self._optimum_costs()
        out: dict[str, StrategyMetrics] = {}
        for name, o in self.outcomes.items():
            gap = None
            if exact_gap is not None:
                gap = gap_captured(base.cost, o.cost, exact_gap, anti, negligible(p), optimum)
            out[name] = StrategyMetrics(
                is_=summary(o.shortfall, p, anti),
                cost=summary(o.cost, p, anti),
                savings_is=savings_stats(base.shortfall, o.shortfall, p, anti),
                savings_cost=savings_stats(base.cost, o.cost, p, anti),
                gap_captured=gap,
                exact_gap=exact_gap,
                volume=self._volume_metrics(base, o),
            )
        return out

    def _optimum_costs(self) -> FloatArray | None:
        """The exact optimum's costs on these episodes, the denominator of the gap captured;
        None where it was not evaluated, or with lots (its lot-rounded trades are not the bound:
        the gap is then measured against the exact, continuous one)."""
        optimal = self.optimal_strategy
        if self.params.lot_size > 0 or optimal is None:
            return None
        return self.outcomes[optimal.name].cost

    @property
    def optimal_strategy(self) -> OptimalStrategy | None:
        """The exact optimum among the evaluated strategies, if it is one of them."""
        return next((s for s in self.strategies if isinstance(s, OptimalStrategy)), None)

    def _volume_metrics(self, base: Outcomes, o: Outcomes) -> VolumeMetrics | None:
        """VWAP slippage and participation, where both outcomes measured them."""
        if (
            base.vwap_slippage is None
            or o.vwap_slippage is None
            or o.participation_mean is None
            or o.participation_max is None
        ):
            return None
        ex_impact = None
        if base.vwap_slippage_ex_impact is not None and o.vwap_slippage_ex_impact is not None:
            ex_impact = (base.vwap_slippage_ex_impact, o.vwap_slippage_ex_impact)
        return volume_metrics(
            base.vwap_slippage,
            o.vwap_slippage,
            o.participation_mean,
            o.participation_max,
            self.params,
            self.antithetic,
            ex_impact,
        )

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
            from rl_order_execution.exact import optimal_cost

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
    p: MarketParams, strategies: Sequence[Strategy], shocks: Shocks, antithetic: bool = False
) -> Evaluation:
    """Every strategy on the same shocks; `antithetic` says how shocks were drawn (for SEs).

    Episodes run in blocks of CHUNK_EPISODES (episodes are independent, so the numbers do not
    depend on the block size) and only per-episode results and the sample paths are kept.
    """
    outcomes, paths = {}, {}
    for st in strategies:
        blocks = []
        for start in range(0, len(shocks), CHUNK_EPISODES):
            tr = rollout(p, st, shocks.rows(start, start + CHUNK_EPISODES))
            blocks.append(Outcomes.of(p, tr))
            if start == 0:
                paths[st.name] = tr.head(SAMPLE_PATHS)
        outcomes[st.name] = Outcomes.concatenate(blocks)
    return Evaluation(p, outcomes, paths, tuple(strategies), antithetic)
