"""Replayed prices (docs/MODEL.md, "Historical replay"): S' = S + (H_{k+1} - H_k) - alpha n, where H
is the window's real path on the model's scale. The increments come from the window (the shock's z),
never from a random draw.

As a model for expectations (the learner's TWAP value and control variate, the calibrated
references) it is the martingale that the calibration assumes: E[S'] = S - alpha n.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.prices.base import Multiplicative
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.market.params import MarketParams


class Replay(Multiplicative):
    name = "replay"

    def draw(self, p: MarketParams, rng: np.random.Generator, episodes: int) -> Shocks:
        raise ValueError("replayed prices are not drawn: they come from the bar file's windows")

    def draw_step(self, p: MarketParams, rng: np.random.Generator, batch: int) -> Shocks:
        return self.draw(p, rng, batch)

    def next_price(
        self, p: MarketParams, S: FloatArray, latent: FloatArray, n: FloatArray, shock: Shocks
    ) -> tuple[FloatArray, FloatArray]:
        S_next: FloatArray = S + shock.z - p.alpha * n
        return S_next, latent

    def is_martingale(self, p: MarketParams) -> bool:
        return True
