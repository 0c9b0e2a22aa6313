"""The reward a learner sees: the env's reward, potential-shaped and with the price noise of the
held inventory removed. Every agent learns from it; every reported number uses the env's reward."""

from __future__ import annotations

import numpy as np

from rl_order_execution.config import RLSettings
from rl_order_execution.market import (
    MarketParams,
    expected_next_price,
    state_from_obs,
    twap_value,
)


def learner_reward(
    p: MarketParams,
    rl: RLSettings,
    obs: np.ndarray,
    reward: np.ndarray,
    next_obs: np.ndarray,
    terminated: np.ndarray,
) -> np.ndarray:
    """The reward the learner sees; the env's reward and every reported number are untouched.

    Phi(s) = expected value of finishing with TWAP from s, under the model (0 at the end).
    - reward_shaping adds gamma Phi(s') - Phi(s): a potential, so the optimal policy is unchanged
      (Ng, Harada & Russell 1999), and Q-values become small advantages over TWAP;
    - price_control_variate subtracts gamma (Phi(s') - Phi(s' at E[S'])), which has mean zero given
      (s, a) because Phi is linear in S', and removes the price noise of the held inventory.
    """
    m, q, S = state_from_obs(p, obs)
    m_next, q_next, S_next = state_from_obs(p, next_obs)
    live = ~terminated

    def phi_next(price: np.ndarray) -> np.ndarray:  # Phi(s') in bps, 0 after the last step
        return np.where(live, twap_value(p, m_next, q_next, price), 0.0) * p.bps

    r = reward.astype(np.float64)
    phi_realised = phi_next(S_next) if rl.reward_shaping or rl.price_control_variate else 0.0
    if rl.reward_shaping:
        r = r + rl.gamma * phi_realised - twap_value(p, m, q, S) * p.bps
    if rl.price_control_variate:
        expected = expected_next_price(p, S, q, q - q_next)
        r = r - rl.gamma * (phi_realised - phi_next(expected))
    return (r * rl.reward_scale).astype(np.float32)
