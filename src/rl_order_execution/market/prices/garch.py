"""GARCH(1,1) volatility clustering: S' = S exp(mu - v/2 + sqrt(v) Z) - alpha n with the
per-step variance v' = sigma^2 (1 - a - b) + a v Z^2 + b v (sigma: the unconditional volatility).

The mean is GBM's; the variance of a schedule's cost has no closed form (Monte Carlo only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.prices.base import Multiplicative
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.market.params import MarketParams


class Garch(Multiplicative):
    name = "garch"

    def initial_latent(self, p: MarketParams, batch: int) -> FloatArray:
        return np.full(batch, p.sigma**2)

    def next_price(
        self, p: MarketParams, S: FloatArray, latent: FloatArray, n: FloatArray, shock: Shocks
    ) -> tuple[FloatArray, FloatArray]:
        z, var = shock.z, latent
        S_next: FloatArray = S * np.exp(p.mu - 0.5 * var + np.sqrt(var) * z) - p.alpha * n
        a, b = p.garch_alpha, p.garch_beta
        var_next: FloatArray = p.sigma**2 * (1 - a - b) + a * var * z * z + b * var
        return S_next, var_next
