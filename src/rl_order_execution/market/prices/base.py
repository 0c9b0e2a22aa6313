"""The price-model seam: what a mid-price model must do, and what it may know exactly.

Every model steps a batch of episodes and gives E[S' | state] (which is all the TWAP value, the
learner's control variate and the expected cost of a deterministic schedule need). The exact
second moments that the LQ optimum and the self-check use are optional: a model without them
returns None, and callers report "unavailable" rather than borrow another model's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.market.params import MarketParams


@dataclass(frozen=True)
class LQTransition:
    """x' = (F0 + xi F1) z for x = (q, S, 1), z = (q, S, 1, n), E[xi] = e1, E[xi^2] = e2.

    `exact` is False when the model's state holds more than (q, S) (GARCH with drift): the
    recursion's policy is then a labelled approximation, not the optimum.
    """

    F0: FloatArray
    F1: FloatArray
    e1: float
    e2: float
    exact: bool = True


class PriceModel(Protocol):
    """A mid-price model over a leading batch axis. `latent` is the model's own per-episode state
    (the OU level, the GARCH variance; unused by GBM and jumps)."""

    name: str

    def initial_latent(self, p: MarketParams, batch: int) -> FloatArray: ...

    def draw(self, p: MarketParams, rng: np.random.Generator, episodes: int) -> Shocks:
        """Shocks of `episodes` episodes over p.N steps."""
        ...

    def draw_step(self, p: MarketParams, rng: np.random.Generator, batch: int) -> Shocks:
        """Shocks of one step for `batch` episodes (the vectorised env's stream)."""
        ...

    def next_price(
        self, p: MarketParams, S: FloatArray, latent: FloatArray, n: FloatArray, shock: Shocks
    ) -> tuple[FloatArray, FloatArray]:
        """Mid price and latent state after the trades n (permanent impact included)."""
        ...

    def expected_next_price(
        self, p: MarketParams, S: FloatArray, q: FloatArray, n: FloatArray
    ) -> FloatArray:
        """E[S_{k+1} | S_k, q_k, n_k]."""
        ...

    def twap_value(
        self, p: MarketParams, m: FloatArray, q: FloatArray, S: FloatArray
    ) -> FloatArray:
        """Expected proceeds minus arrival value ($) of selling q evenly over m steps from S,
        before temporary impact and the inventory penalty (which the caller adds)."""
        ...

    def is_martingale(self, p: MarketParams) -> bool:
        """True when E[S' | S] = S - alpha n: every deterministic schedule then has GBM's E[C]
        and the optimum is the deterministic Almgren-Chriss schedule."""
        ...

    def price_moments(
        self, p: MarketParams, trades: FloatArray
    ) -> tuple[FloatArray, FloatArray | None]:
        """Mean (N,) and, where a closed form exists, covariance (N, N) of S_0..S_{N-1} under
        a deterministic schedule."""
        ...

    def lq_transition(self, p: MarketParams) -> LQTransition:
        """The step as the LQ recursion needs it (see LQTransition.exact)."""
        ...


def standard_normal_draw(p: MarketParams, rng: np.random.Generator, episodes: int) -> Shocks:
    """Z[i, k] in one call (episode-major), as the first edition drew them."""
    return Shocks(rng.standard_normal((episodes, p.N)))


def geometric_sums(log_ratio: float, m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """sum_{i<m} r^i and sum_{i<m} (r^i - 1)/(r - 1) for r = e^log_ratio, stable near r = 1."""
    if abs(log_ratio) < 1e-12:
        return m, m * (m - 1) / 2
    powers = np.expm1(log_ratio * m) / math.expm1(log_ratio)
    return powers, (powers - m) / math.expm1(log_ratio)


class Multiplicative:
    """Shared exact pieces of S' = S X - alpha n with i.i.d.-mean X, E[X] = e^mu (GBM, jumps,
    GARCH): the conditional mean, the TWAP value and the mean path do not depend on the law of X
    beyond its mean. Subclasses give E[X^2] where it is known."""

    name = ""

    def initial_latent(self, p: MarketParams, batch: int) -> FloatArray:
        return np.zeros(batch)

    def draw(self, p: MarketParams, rng: np.random.Generator, episodes: int) -> Shocks:
        return standard_normal_draw(p, rng, episodes)

    def draw_step(self, p: MarketParams, rng: np.random.Generator, batch: int) -> Shocks:
        return Shocks(rng.standard_normal(batch))

    def second_moment(self, p: MarketParams) -> float | None:
        """E[X^2], or None where no closed form exists."""
        return None

    def expected_next_price(
        self, p: MarketParams, S: FloatArray, q: FloatArray, n: FloatArray
    ) -> FloatArray:
        out: FloatArray = S * math.exp(p.mu) - p.alpha * n
        return out

    def twap_value(
        self, p: MarketParams, m: FloatArray, q: FloatArray, S: FloatArray
    ) -> FloatArray:
        # E[S_{k+i}] = e^{mu i} S - alpha n sum_{j<i} e^{mu j}
        n = q / m
        growth, impact = geometric_sums(p.mu, m)
        out: FloatArray = n * S * growth - p.alpha * n * n * impact
        return out

    def is_martingale(self, p: MarketParams) -> bool:
        return p.mu == 0

    def price_moments(
        self, p: MarketParams, trades: FloatArray
    ) -> tuple[FloatArray, FloatArray | None]:
        n = np.asarray(trades, dtype=np.float64)
        a, m2 = math.exp(p.mu), self.second_moment(p)
        mean, var = np.empty(p.N), np.zeros(p.N)
        mean[0] = p.P0
        for k in range(p.N - 1):
            mean[k + 1] = a * mean[k] - p.alpha * n[k]
            if m2 is not None:
                var[k + 1] = m2 * var[k] + (m2 - a * a) * mean[k] ** 2
        if m2 is None:
            return mean, None
        return mean, lagged_covariance(var, a)

    def lq_transition(self, p: MarketParams) -> LQTransition:
        F0 = np.array([[1.0, 0, 0, -1], [0, 0, 0, -p.alpha], [0, 0, 1, 0]])
        F1 = np.zeros((3, 4))
        F1[1, 1] = 1.0
        m2 = self.second_moment(p)
        if m2 is None:  # the GBM moment stands in; exact only where the optimum ignores it
            return LQTransition(
                F0, F1, math.exp(p.mu), math.exp(2 * p.mu + p.sigma**2), self.is_martingale(p)
            )
        return LQTransition(F0, F1, math.exp(p.mu), m2)


def lagged_covariance(var: FloatArray, a: float) -> FloatArray:
    """cov(S_j, S_k) = var[min(j, k)] a^|k - j| for an AR(1)-like mean map with slope a."""
    N = len(var)
    row, col = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    cov: FloatArray = var[np.minimum(row, col)] * a ** np.abs(col - row).astype(np.float64)
    return cov
