"""Merton jump diffusion: GBM plus a compound-Poisson log jump J, compensated so that
E[S' | S] = S e^mu - alpha n exactly (fat tails, same mean as GBM)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.prices.base import Multiplicative
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.market.params import MarketParams


def jump_compensator(p: MarketParams) -> float:
    """kappa_J = E[e^Y] - 1 for one jump's log size Y ~ N(m_J, s_J^2)."""
    return math.exp(p.jump_mean + p.jump_std**2 / 2) - 1


class Jump(Multiplicative):
    name = "jump"

    def draw_step(self, p: MarketParams, rng: np.random.Generator, batch: int) -> Shocks:
        # the model's order for the whole batch: Z, then the jump count N, then Y ~ N(0, 1); the
        # sum of N normal log sizes is exactly m_J N + s_J sqrt(N) Y
        z = rng.standard_normal(batch)
        count = rng.poisson(p.jump_intensity, batch).astype(np.float64)
        y = rng.standard_normal(batch)
        return Shocks(z, p.jump_mean * count + p.jump_std * np.sqrt(count) * y)

    def draw(self, p: MarketParams, rng: np.random.Generator, episodes: int) -> Shocks:
        steps = [self.draw_step(p, rng, episodes) for _ in range(p.N)]
        jumps = [s.jump for s in steps if s.jump is not None]
        return Shocks(np.stack([s.z for s in steps], axis=1), np.stack(jumps, axis=1))

    def next_price(
        self, p: MarketParams, S: FloatArray, latent: FloatArray, n: FloatArray, shock: Shocks
    ) -> tuple[FloatArray, FloatArray]:
        if shock.jump is None:
            raise ValueError("the jump model needs jump shocks (draw them with its own draw)")
        drift = p.mu - 0.5 * p.sigma**2 - p.jump_intensity * jump_compensator(p)
        S_next: FloatArray = S * np.exp(drift + p.sigma * shock.z + shock.jump) - p.alpha * n
        return S_next, latent

    def second_moment(self, p: MarketParams) -> float:
        lam, k = p.jump_intensity, jump_compensator(p)
        jumps = lam * math.expm1(2 * p.jump_mean + 2 * p.jump_std**2)
        return math.exp(2 * p.mu + p.sigma**2 - 2 * lam * k + jumps)
