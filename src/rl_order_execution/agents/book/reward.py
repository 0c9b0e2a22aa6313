"""The reward an agent learns from on the book market, in a unit the market itself sets.

The env's reward is in basis points of Q P0 and sums to about 1 bp per episode, some 500 times
less than on the default simulated market, so no learning rate, Huber threshold or entropy
coefficient tuned there fits it. Two learner-side changes, the env's reward and every reported
number untouched:

- Potential shaping by the mark-to-market value of the inventory held, Phi(s) = q (S - P0), and
  the zero-mean price surprise on what is still held removed (a control variate). The value is
  linear in the mid (docs/MODEL.md, "Limit-order book market": q (S - P0) + W_k(q, s, iota)), so
  what is left is the W part: the spread earned or paid, impact, the inventory penalty and the
  expected drift e(iota) on what is held. Only the limit order's fill stays random. The optimal
  policy is unchanged: the shaping is a potential (Ng, Harada & Russell 1999) and the surprise has
  mean zero given the state and the action (D_k is independent of the fill given (s_k, iota_k)).
- A unit: the exact menu optimum's expected advantage over TWAP is worth ADVANTAGE_UNITS per
  episode. That is the size of what there is to learn, on any book market; on the defaults it
  makes the learner's values a few units, as the Double DQN's are on the default market (its
  40.67 bp optimum's advantage times its reward_scale 0.3 is 12.2).
"""

from __future__ import annotations

import math

import numpy as np

from rl_order_execution.market.book import BookParams, solve_menu, twap_expected_cost
from rl_order_execution.market.book.params import FloatArray, IntArray

ADVANTAGE_UNITS = 10.0  # learner units per episode of the menu optimum's advantage over TWAP
FLOOR_SHARE = 0.1  # the unit's floor, as a share of TWAP's expected half-spread cost

Float32Array = np.ndarray[tuple[int, ...], np.dtype[np.float32]]


def advantage_bps(p: BookParams) -> float:
    """E[C_TWAP] - E[C_opt] of the exact menu optimum, in bps of Q P0."""
    return (twap_expected_cost(p) - solve_menu(p).expected_cost) * p.bps


def reward_unit(p: BookParams, advantage: float | None = None) -> float:
    """Learner units per bp: ADVANTAGE_UNITS over the menu optimum's advantage over TWAP (bps).
    Where the menu cannot beat TWAP by much (a menu that cannot sell fast enough), the advantage
    is floored at FLOOR_SHARE of TWAP's half-spread cost Q sbar tau / 2, the market's own cost
    scale, so the unit stays finite."""
    gap = advantage_bps(p) if advantage is None else advantage
    floor = FLOOR_SHARE * p.Q * p.mean_spread * p.tick / 2 * p.bps
    scale = max(gap, floor)
    return ADVANTAGE_UNITS / scale if math.isfinite(scale) and scale > 0 else 1.0


def level_index(p: BookParams, imbalance: FloatArray) -> IntArray:
    """Index of each observed imbalance (float32) among the levels."""
    out: IntArray = np.abs(imbalance[:, None] - p.levels[None, :]).argmin(axis=1)
    return out


def learner_reward(
    p: BookParams,
    gamma: float,
    unit: float,
    obs: np.ndarray,
    reward: np.ndarray,
    next_obs: np.ndarray,
) -> Float32Array:
    """r + gamma Phi(s') - Phi(s) - gamma q_{k+1} (tau D_k - e(iota_k)), times the unit.

    obs and next_obs are the env's (B, 6) features before and after the step (the final
    observation where an episode ended: its inventory is 0, so Phi and the surprise vanish);
    reward is the env's, in bps."""
    q = obs[:, 1].astype(np.float64) * p.Q
    gain = obs[:, 2].astype(np.float64) * p.price_scale  # S_k - P0
    q_next = next_obs[:, 1].astype(np.float64) * p.Q
    gain_next = next_obs[:, 2].astype(np.float64) * p.price_scale
    move = next_obs[:, 3].astype(np.float64)  # D_k, ticks
    drift = p.expected_move[level_index(p, obs[:, 5])]  # e(iota_k), $
    shaped = reward.astype(np.float64) + (gamma * q_next * gain_next - q * gain) * p.bps
    surprise = gamma * q_next * (p.tick * move - drift) * p.bps
    out: Float32Array = ((shaped - surprise) * unit).astype(np.float32)
    return out
