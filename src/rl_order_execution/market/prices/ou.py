"""Ornstein-Uhlenbeck (mean-reverting) prices around a level that our permanent impact moves:
S' = theta + (S - theta) e^-kappa + sigma P0 sqrt((1 - e^-2kappa) / 2kappa) Z - alpha n,
theta' = theta - alpha n (theta_0 = P0, so theta_k = P0 - alpha (Q - q_k))."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.prices.base import (
    LQTransition,
    geometric_sums,
    lagged_covariance,
    standard_normal_draw,
)
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.market.params import MarketParams


def ou_noise(p: MarketParams) -> float:
    """Std of the OU price shock per step in $."""
    k = p.kappa
    return p.sigma * p.P0 * math.sqrt((1 - math.exp(-2 * k)) / (2 * k))


def _level(p: MarketParams, q: FloatArray) -> FloatArray:
    """theta_k = P0 - alpha (Q - q_k): the level after the permanent impact of what was sold."""
    theta: FloatArray = p.P0 - p.alpha * (p.Q - q)
    return theta


class OU:
    name = "ou"

    def initial_latent(self, p: MarketParams, batch: int) -> FloatArray:
        return np.full(batch, p.P0)

    def draw(self, p: MarketParams, rng: np.random.Generator, episodes: int) -> Shocks:
        return standard_normal_draw(p, rng, episodes)

    def draw_step(self, p: MarketParams, rng: np.random.Generator, batch: int) -> Shocks:
        return Shocks(rng.standard_normal(batch))

    def next_price(
        self, p: MarketParams, S: FloatArray, latent: FloatArray, n: FloatArray, shock: Shocks
    ) -> tuple[FloatArray, FloatArray]:
        theta = latent
        theta_next = theta - p.alpha * n
        decay = math.exp(-p.kappa)
        S_next: FloatArray = theta + (S - theta) * decay + ou_noise(p) * shock.z - p.alpha * n
        return S_next, theta_next

    def expected_next_price(
        self, p: MarketParams, S: FloatArray, q: FloatArray, n: FloatArray
    ) -> FloatArray:
        theta = _level(p, q)
        out: FloatArray = theta + (S - theta) * math.exp(-p.kappa) - p.alpha * n
        return out

    def twap_value(
        self, p: MarketParams, m: FloatArray, q: FloatArray, S: FloatArray
    ) -> FloatArray:
        # E[S_{k+i}] = theta_k - alpha n i + (S - theta_k) e^{-kappa i}
        n = q / m
        theta = _level(p, q)
        reversion, _ = geometric_sums(-p.kappa, m)
        proceeds = q * theta - p.alpha * n * n * m * (m - 1) / 2
        out: FloatArray = proceeds + n * (S - theta) * reversion
        return out

    def is_martingale(self, p: MarketParams) -> bool:
        return False

    def price_moments(
        self, p: MarketParams, trades: FloatArray
    ) -> tuple[FloatArray, FloatArray | None]:
        n = np.asarray(trades, dtype=np.float64)
        a, noise = math.exp(-p.kappa), ou_noise(p)
        mean, var = np.empty(p.N), np.zeros(p.N)
        mean[0], theta = p.P0, p.P0
        for k in range(p.N - 1):
            mean[k + 1] = theta + a * (mean[k] - theta) - p.alpha * n[k]
            var[k + 1] = a * a * var[k] + noise**2
            theta -= p.alpha * n[k]
        return mean, lagged_covariance(var, a)

    def lq_transition(self, p: MarketParams) -> LQTransition:
        F0 = np.array([[1.0, 0, 0, -1], [0, 0, 0, -p.alpha], [0, 0, 1, 0]])
        F1 = np.zeros((3, 4))
        d = math.exp(-p.kappa)
        F0[1, :3] = [(1 - d) * p.alpha, d, (1 - d) * (p.P0 - p.alpha * p.Q)]
        F1[1, 2] = ou_noise(p)
        return LQTransition(F0, F1, 0.0, 1.0)
