"""Paired evaluation on the book market: every strategy on the same draws (common random
numbers), all episodes in lockstep, reduced to per-episode results (docs/MODEL.md, "What is
reported")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_order_execution.market.book.dynamics import (
    BookState,
    StepInfo,
    advance,
    draw_reset,
    draw_step,
    start,
)
from rl_order_execution.market.book.params import BookParams, BoolArray, FloatArray, IntArray
from rl_order_execution.market.book.policies import BookPolicy


@dataclass(frozen=True)
class BookOutcomes:
    """One strategy's per-episode results (E,): implementation shortfall IS and risk-adjusted cost
    C = IS + lambda_b sum_k q_k^2 / Q in $, limit orders posted and filled (steps k < N - 1 with
    q_k > 0), the passive share (shares sold by limit orders / Q) and the episode's return (bp)."""

    shortfall: FloatArray
    cost: FloatArray
    posted: IntArray
    filled: IntArray
    passive_share: FloatArray
    episode_return: FloatArray

    @property
    def fill_rate(self) -> float:
        """Limit orders filled / posted, pooled over episodes and steps (nan if none posted)."""
        posted = int(self.posted.sum())
        return float(self.filled.sum()) / posted if posted else float("nan")


class _Tally:
    """Per-episode running sums of one strategy."""

    def __init__(self, episodes: int) -> None:
        self.proceeds = np.zeros(episodes)
        self.inventory_squares = np.zeros(episodes)
        self.posted = np.zeros(episodes, dtype=np.int64)
        self.filled = np.zeros(episodes, dtype=np.int64)
        self.passive = np.zeros(episodes)
        self.reward = np.zeros(episodes)

    def add(self, s: BookState, info: StepInfo) -> None:
        """Step k's contribution; s is the state before the step (q_k)."""
        self.proceeds += info.proceeds
        self.inventory_squares += s.q * s.q
        self.posted += info.posted
        self.filled += info.filled
        self.passive += info.passive
        self.reward += info.reward

    def outcomes(self, p: BookParams) -> BookOutcomes:
        shortfall = p.notional - self.proceeds
        return BookOutcomes(
            shortfall=shortfall,
            cost=shortfall + p.risk_aversion * self.inventory_squares / p.Q,
            posted=self.posted,
            filled=self.filled,
            passive_share=self.passive / p.Q,
            episode_return=self.reward,
        )


@dataclass(frozen=True)
class BookPaths:
    """One strategy's full paths on E episodes: inventory q, mid S, spread and imbalance indices
    (E, N + 1); per step (E, N): shares sold, proceeds, reward (bp), limit posted / filled,
    passive shares and the exogenous move D_k (ticks). `outcomes` reduces them per episode."""

    q: FloatArray
    S: FloatArray
    spread: IntArray
    imbalance: IntArray
    shares: FloatArray
    proceeds: FloatArray
    reward: FloatArray
    posted: BoolArray
    filled: BoolArray
    passive: FloatArray
    move: FloatArray
    outcomes: BookOutcomes


def rollout(p: BookParams, policy: BookPolicy, episodes: int, seed: int) -> BookPaths:
    """One strategy on `episodes` episodes drawn from default_rng(seed) exactly as a vector env
    of that many episodes seeded so would draw them; full paths kept."""
    rng = np.random.default_rng(seed)
    s = start(p, draw_reset(rng, episodes))
    tally = _Tally(episodes)
    states, infos = [s], []
    for _ in range(p.N):
        nxt, info = advance(p, s, policy(p, s), draw_step(rng, episodes))
        tally.add(s, info)
        s = nxt
        states.append(s)
        infos.append(info)

    def along(name: str, rows: Sequence[object]) -> Any:
        return np.stack([getattr(r, name) for r in rows], axis=1)

    return BookPaths(
        q=along("q", states),
        S=along("S", states),
        spread=along("spread", states),
        imbalance=along("imbalance", states),
        shares=along("shares", infos),
        proceeds=along("proceeds", infos),
        reward=along("reward", infos),
        posted=along("posted", infos),
        filled=along("filled", infos),
        passive=along("passive", infos),
        move=along("move", infos),
        outcomes=tally.outcomes(p),
    )


@dataclass(frozen=True)
class BookEvaluation:
    """Per-episode results of several strategies on one shared set of draws."""

    params: BookParams
    outcomes: dict[str, BookOutcomes]
    seed: int

    @property
    def episodes(self) -> int:
        return len(next(iter(self.outcomes.values())).cost)

    def mean_cost(self, name: str) -> float:
        """Sample mean of C, $."""
        return float(self.outcomes[name].cost.mean())

    def advantage_share(self, name: str, optimum: str = "optimal", baseline: str = "twap") -> float:
        """(C_TWAP - C) / (C_TWAP - C_opt) with the sample means on these episodes."""
        base = self.mean_cost(baseline)
        return (base - self.mean_cost(name)) / (base - self.mean_cost(optimum))


def evaluate(
    p: BookParams, policies: Sequence[BookPolicy], episodes: int, seed: int
) -> BookEvaluation:
    """Every strategy on the same draws: one reset and, each step, one set of four uniforms for
    all of them (so each sees what `rollout` with this seed gives it), episodes in lockstep."""
    names = [pol.name for pol in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must be distinct: {names}")
    rng = np.random.default_rng(seed)
    first = start(p, draw_reset(rng, episodes))
    states = [first] * len(policies)
    tallies = [_Tally(episodes) for _ in policies]
    for _ in range(p.N):
        u = draw_step(rng, episodes)
        for j, pol in enumerate(policies):
            nxt, info = advance(p, states[j], pol(p, states[j]), u)
            tallies[j].add(states[j], info)
            states[j] = nxt
    outcomes = {pol.name: t.outcomes(p) for pol, t in zip(policies, tallies, strict=True)}
    return BookEvaluation(p, outcomes, seed)
