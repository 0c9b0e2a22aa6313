"""Geometric Brownian motion: S' = S exp(mu - sigma^2/2 + sigma Z) - alpha n."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.prices.base import Multiplicative
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.market.params import MarketParams


class GBM(Multiplicative):
    name = "gbm"

    def next_price(
        self, p: MarketParams, S: FloatArray, latent: FloatArray, n: FloatArray, shock: Shocks
    ) -> tuple[FloatArray, FloatArray]:
        S_next: FloatArray = S * np.exp(p.mu - 0.5 * p.sigma**2 + p.sigma * shock.z) - p.alpha * n
        return S_next, latent

    def second_moment(self, p: MarketParams) -> float:
        return math.exp(2 * p.mu + p.sigma**2)
