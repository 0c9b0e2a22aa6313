"""The reward a learner sees: the env's reward, potential-shaped and with the price noise of the
held inventory removed. Every agent learns from it; every reported number uses the env's reward.

The potential is the expected value of finishing the order with the market's static schedule: the
deterministic schedule that minimises the expected impact cost, n_j proportional to
1 / (beta_j - alpha/2) over the steps left. On a flat profile that is TWAP (all beta_j equal);
under an intraday volume profile it follows liquidity, close to VWAP.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rl_order_execution.config import RLSettings
from rl_order_execution.market import (
    FloatArray,
    MarketParams,
    expected_next_price,
    state_from_obs,
    twap_value,
)


def static_fractions(p: MarketParams, k: int) -> FloatArray:
    """Shares of the order held at step k that the static schedule sells at steps k..N-1.

    Minimises sum_j (beta_j - alpha/2) n_j^2, the expected impact cost of a deterministic schedule
    under a martingale price, whence n_j ~ 1 / (beta_j - alpha/2); the clip of beta_k (README,
    "Intraday volume") keeps it > 0."""
    c = 1.0 / (p.betas[k:] - 0.5 * p.alpha)
    out: FloatArray = c / c.sum()
    return out


def _static_value_at(p: MarketParams, k: int, q: FloatArray, S: FloatArray) -> FloatArray:
    """Expected return ($) of selling q from mid price S by the static schedule from step k,
    stepping the price model's E[S' | S, q, n] (exact: it is affine, the trades deterministic)."""
    value, held = np.zeros_like(q), q.copy()
    for j, f in enumerate(static_fractions(p, k), start=k):
        n = held if j == p.N - 1 else q * f
        value += n * (S - p.betas[j] * n - p.P0) - p.lam * held * held / p.Q
        S = expected_next_price(p, S, held, n)
        held = held - n
    return value


@lru_cache(maxsize=16)
def static_value_coefficients(p: MarketParams) -> FloatArray:
    """(N+1, 3): row m (steps left) holds (a, b, c) with value = a q S + b q^2 + c q.

    The static value has exactly this form for any price model whose E[S' | S, q, n] is affine,
    so three evaluations per step determine it."""
    out = np.zeros((p.N + 1, 3))
    q = np.array([p.Q, p.Q, 2 * p.Q])
    S = np.array([p.P0, 0.0, 0.0])
    for m in range(1, p.N + 1):
        v_top, v_one, v_two = _static_value_at(p, p.N - m, q, S)
        b = (v_two - 2 * v_one) / (2 * p.Q * p.Q)
        out[m] = ((v_top - v_one) / (p.Q * p.P0), b, (v_one - b * p.Q * p.Q) / p.Q)
    return out


def static_value(p: MarketParams, m: FloatArray, q: FloatArray, S: FloatArray) -> FloatArray:
    """Expected return ($) of finishing q by the static schedule over the m steps left, from mid
    price S. Linear in S. 0 once m or q is 0. On a flat profile it is `twap_value` itself."""
    if p.is_flat:  # TWAP is the static schedule; its closed form keeps every number identical
        return twap_value(p, m, q, S)
    coef = static_value_coefficients(p)[np.clip(m, 0, p.N).astype(np.int64)]
    value = coef[:, 0] * q * S + coef[:, 1] * q * q + coef[:, 2] * q
    out: FloatArray = np.where((m > 0) & (q > 0), value, 0.0)
    return out


def learner_reward(
    p: MarketParams,
    rl: RLSettings,
    obs: np.ndarray,
    reward: np.ndarray,
    next_obs: np.ndarray,
    terminated: np.ndarray,
) -> np.ndarray:
    """The reward the learner sees; the env's reward and every reported number are untouched.

    Phi(s) = expected value of finishing with the static schedule from s (TWAP on a flat profile),
    under the model (0 at the end).
    - reward_shaping adds gamma Phi(s') - Phi(s): a potential, so the optimal policy is unchanged
      (Ng, Harada & Russell 1999), and Q-values become small advantages over that schedule;
    - price_control_variate subtracts gamma (Phi(s') - Phi(s' at E[S'])), which has mean zero given
      (s, a) because Phi is linear in S', and removes the price noise of the held inventory.
    """
    m, q, S = state_from_obs(p, obs)
    m_next, q_next, S_next = state_from_obs(p, next_obs)
    live = ~terminated

    def phi_next(price: np.ndarray) -> np.ndarray:  # Phi(s') in bps, 0 after the last step
        return np.where(live, static_value(p, m_next, q_next, price), 0.0) * p.bps

    r = reward.astype(np.float64)
    phi_realised = phi_next(S_next) if rl.reward_shaping or rl.price_control_variate else 0.0
    if rl.reward_shaping:
        r = r + rl.gamma * phi_realised - static_value(p, m, q, S) * p.bps
    if rl.price_control_variate:
        expected = expected_next_price(p, S, q, q - q_next)
        r = r - rl.gamma * (phi_realised - phi_next(expected))
    return (r * rl.reward_scale).astype(np.float32)
