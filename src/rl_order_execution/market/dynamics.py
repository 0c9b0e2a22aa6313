"""The market math (docs/MODEL.md) as pure numpy functions over a leading batch axis. The
envs, the evaluation rollout and the exact references all call these: the dynamics are written
once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_order_execution.arrays import FloatArray, IntArray
from rl_order_execution.market.params import BASE_OBS_DIM, MarketParams, MarketState
from rl_order_execution.market.shocks import Shocks

OBS_DIM = BASE_OBS_DIM  # the model's four features; p.obs_dim adds the extra ones
REALISED_VOL_DECAY = 2 ** (-1 / 10)  # EWMA weight of the realised variance: half-life 10 steps


def _volume_remaining(p: MarketParams, s: MarketState) -> FloatArray:
    if s.windows is not None:
        return s.windows.volume_left_at(s.window, np.minimum(s.k, p.N))
    out: FloatArray = p.volume_left[np.minimum(s.k, p.N)]
    return out


def _vwap_deviation(p: MarketParams, s: MarketState) -> FloatArray:
    """(VWAP of the mids so far - S_k) / (P0 sigma); 0 before any volume has traded."""
    if s.windows is not None:
        done = s.windows.volume_done_at(s.window, np.minimum(s.k, p.N))
    else:
        done = p.volume_done[np.minimum(s.k, p.N)]
    vwap = s.vwap_sum / np.maximum(done, 1e-300)
    out: FloatArray = np.where(done > 0, (vwap - s.S) / p.move_scale, 0.0)
    return out


def _realised_vol(p: MarketParams, s: MarketState) -> FloatArray:
    out: FloatArray = np.sqrt(s.realised_var) / (p.move_scale / p.P0 if p.sigma > 0 else 1.0)
    return out


def _spread(p: MarketParams, s: MarketState) -> FloatArray:
    """(ask - bid) / (close sigma) of the bar the decision sees (replayed bars with quotes)."""
    if s.windows is None:
        raise ValueError("the spread feature needs replayed bars with bid and ask")
    return s.windows.spread_at(s.window, np.minimum(s.k, p.N - 1))


EXTRA_FEATURES = {
    "volume_remaining": _volume_remaining,
    "vwap_deviation": _vwap_deviation,
    "realised_vol": _realised_vol,
    "spread": _spread,
}


def observe(p: MarketParams, s: MarketState) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Features of the model (docs/MODEL.md), then the extra ones, (B, p.obs_dim) float32."""
    obs = np.empty((s.q.shape[0], p.obs_dim), dtype=np.float32)
    obs[:, 0] = (p.N - s.k) / p.N
    obs[:, 1] = s.q / p.Q
    obs[:, 2] = (s.S - p.P0) / p.level_scale
    obs[:, 3] = (s.S - s.S_prev) / p.move_scale
    for i, name in enumerate(p.extra_features, start=OBS_DIM):
        obs[:, i] = EXTRA_FEATURES[name](p, s)
    return obs


def twap_rate(p: MarketParams, q: FloatArray, k: IntArray) -> FloatArray:
    """TWAP rate of the remaining order, q_k / (N - k)."""
    out: FloatArray = q / np.maximum(p.N - k, 1)
    return out


def base_rate(p: MarketParams, s: MarketState) -> FloatArray:
    """The rate the multipliers scale: q_k / (N - k) (rate_basis remaining) or Q / N (initial)."""
    return twap_rate(p, s.q, s.k) if p.rate_basis == "remaining" else np.full_like(s.q, p.Q / p.N)


def desired_from_actions(p: MarketParams, s: MarketState, actions: IntArray) -> FloatArray:
    """Shares an action index asks for: m[a] times the configured base rate."""
    out: FloatArray = p._mult[actions] * base_rate(p, s)
    return out


def desired_from_speeds(p: MarketParams, s: MarketState, speeds: FloatArray) -> FloatArray:
    """Shares a continuous action asks for: its speed, clipped into [0, max_multiplier], times
    the configured base rate."""
    clipped = np.minimum(np.maximum(speeds, 0.0), p.max_multiplier)
    out: FloatArray = clipped * base_rate(p, s)
    return out


def trade_size(p: MarketParams, s: MarketState, desired: FloatArray) -> FloatArray:
    """What actually trades: within [0, q_k], lot-rounded, and everything at the last step."""
    n = np.minimum(np.maximum(desired, 0.0), s.q)  # np.clip, without its per-call overhead
    if p.lot_size > 0:
        n = np.floor(n / p.lot_size + 1e-9) * p.lot_size
        n = np.minimum(n, s.q)
    out: FloatArray = np.where(s.k >= p.N - 1, s.q, n)
    return out


def execution_price(
    p: MarketParams, S: FloatArray, n: FloatArray, k: IntArray, beta: FloatArray | None = None
) -> FloatArray:
    """P~ = S - beta_k * n at steps k (beta itself on a flat profile; each episode's own beta_k
    where given, as on replayed bars)."""
    if beta is not None:
        out: FloatArray = S - beta * n
    elif p.is_flat:
        out = S - p.beta * n
    else:
        out = S - p.betas[np.minimum(k, p.N - 1)] * n
    return out


def step_reward(
    p: MarketParams, q: FloatArray, n: FloatArray, exec_price: FloatArray
) -> FloatArray:
    """r_k in bps of Q*P0: execution gain vs arrival minus the inventory penalty on q_k."""
    out: FloatArray = (n * (exec_price - p.P0) - p.lam * q * q / p.Q) * p.bps
    return out


@dataclass
class StepResult:
    n: FloatArray
    exec_price: FloatArray
    reward: FloatArray
    terminated: np.ndarray[Any, np.dtype[np.bool_]]


def market_step(p: MarketParams, s: MarketState, desired: FloatArray, shock: Shocks) -> StepResult:
    """Advance every episode one step in place: trade, reward, price move, inventory.

    Replayed episodes take their price move and beta_k from their window's bar, not `shock`."""
    n = trade_size(p, s, desired)
    beta = None
    if s.windows is not None:
        move, beta = s.windows.step_at(s.window, np.minimum(s.k, p.N - 1))
        shock = Shocks(move)
    px = execution_price(p, s.S, n, s.k, beta)
    reward = step_reward(p, s.q, n, px)
    S_next, latent_next = p.prices.next_price(p, s.S, s.latent, n, shock)
    if p.extra_features:
        _update_features(p, s, n, S_next)
    s.S_prev, s.S, s.latent = s.S, S_next, latent_next
    s.q = np.maximum(s.q - n, 0.0)
    s.k = s.k + 1
    terminated = (s.k >= p.N) | (s.q <= 0.0)
    return StepResult(n=n, exec_price=px, reward=reward, terminated=terminated)


def _update_features(p: MarketParams, s: MarketState, n: FloatArray, S_next: FloatArray) -> None:
    """The running sums of the extra features, before k and S move on."""
    if "vwap_deviation" in p.extra_features:
        if s.windows is not None:
            volume = s.windows.volume_at(s.window, np.minimum(s.k, p.N - 1))
        else:
            volume = p.volume[np.minimum(s.k, p.N - 1)]
        s.vwap_sum = s.vwap_sum + volume * s.S
    if "realised_vol" in p.extra_features:
        r = (S_next + p.alpha * n - s.S) / p.P0  # our own permanent impact removed
        d = REALISED_VOL_DECAY
        s.realised_var = d * s.realised_var + (1 - d) * r * r


def state_from_obs(p: MarketParams, obs: np.ndarray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(steps left m, inventory q, mid price S) recovered from observations."""
    m = np.rint(obs[:, 0].astype(np.float64) * p.N)
    q = obs[:, 1].astype(np.float64) * p.Q
    S = p.P0 + obs[:, 2].astype(np.float64) * p.level_scale
    return m, q, S


def expected_next_price(p: MarketParams, S: FloatArray, q: FloatArray, n: FloatArray) -> FloatArray:
    """E[S_{k+1} | S_k, q_k, n_k] under the market's price model."""
    return p.prices.expected_next_price(p, S, q, n)


def twap_value(p: MarketParams, m: FloatArray, q: FloatArray, S: FloatArray) -> FloatArray:
    """Expected return ($) of selling q evenly over the m steps left, from mid price S.

    Exact under the model: sum over the steps left of n (E[S] - beta_k n - P0) minus the
    inventory penalty, with n = q / m. Linear in S. 0 once m or q is 0.
    """
    m_safe = np.maximum(m, 1.0)
    n = q / m_safe
    penalty = p.lam * q * q * (m_safe + 1) * (2 * m_safe + 1) / (6 * m_safe * p.Q)
    proceeds = p.prices.twap_value(p, m_safe, q, S)
    if p.is_flat:
        value = proceeds - q * (p.beta * n + p.P0) - penalty
    else:  # the temporary impact of the last m steps: n^2 (beta_{N-m} + ... + beta_{N-1})
        impact = n * n * p.beta_left[np.minimum(m_safe, p.N).astype(np.int64)]
        value = proceeds - q * p.P0 - impact - penalty
    out: FloatArray = np.where((m > 0) & (q > 0), value, 0.0)
    return out


def shock_matrix(
    p: MarketParams, seed: int | np.random.SeedSequence, episodes: int, antithetic: bool = False
) -> Shocks:
    """Shared price shocks of a set of evaluation episodes, drawn by the market's price model.

    antithetic: episode i + E/2 gets -Z of episode i (E even; jumps shared), which cancels most of
    the noise of mean costs; statistics then use pair averages as the independent units.
    """
    rng = np.random.default_rng(seed)
    if not antithetic:
        return p.prices.draw(p, rng, episodes)
    if episodes % 2:
        raise ValueError("antithetic shocks need an even number of episodes")
    return p.prices.draw(p, rng, episodes // 2).mirrored()
