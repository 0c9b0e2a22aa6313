"""The book market's exact optimum (docs/MODEL.md, "Limit-order book market"): backward induction on
(k, q, s, iota) with q on the grid {Q - j c} and 0, vectorised over the grid, spreads and levels.

The expected reward-to-go is q (S - P0) + W_k(q, s, iota) in $; everything here is W. Its
stationary average at (k, q) = (0, Q) is the expected reward of the episode, minus its expected
risk-adjusted cost C."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_order_execution.market.book.params import (
    Action,
    BookParams,
    FloatArray,
    IntArray,
    Limit,
    Wait,
)

DEPTH_GRID = 2001  # points of SAC's depth grid over [0, max_depth] before golden-section search
GOLDEN_STEPS = 60  # golden-section iterations on a grid cell (shrinks it by 0.618^60 ~ 3e-13)
INV_PHI = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class BookSolution:
    """W[k, g, s, i] ($, (N, G, S, L)) of a policy, the policy itself (menu index, or SAC's
    continuous action a) and its expected reward ($): the stationary average of W_0(Q)."""

    values: FloatArray
    policy: Any
    expected_reward: float

    @property
    def expected_cost(self) -> float:
        """E[C] in $."""
        return -self.expected_reward


def start_value(p: BookParams, W0: FloatArray) -> float:
    """The stationary average of W_0(Q, s, iota): the expected reward from a random start."""
    return float(p.stationary_spread @ W0[0] @ p.stationary_imbalance)


def next_expectation(p: BookParams, W: FloatArray) -> FloatArray:
    """E' W_{k+1}(q, s', iota') given (s, iota): Pi_s W Pi_I^T per inventory, (G, S, L)."""
    out: FloatArray = p.spread_transition @ W @ p.imbalance_transition.T
    return out


def _inventory(p: BookParams) -> FloatArray:
    """q on the grid as a (G, 1, 1) column."""
    return p.grid[:, None, None]


def _half_spread(p: BookParams) -> FloatArray:
    """s tau / 2 as a (1, S, 1) array, $."""
    return (p.spreads * p.tick / 2)[None, :, None]


def penalty(p: BookParams) -> FloatArray:
    """-lambda_b q^2 / Q, (G, 1, 1)."""
    q = _inventory(p)
    out: FloatArray = -p.risk_aversion * q * q / p.Q
    return out


def terminal_values(p: BookParams) -> FloatArray:
    """W_{N-1} = -lambda_b q^2 / Q - q (s tau / 2 + beta_b q), (G, S, L)."""
    q = _inventory(p)
    out: FloatArray = (
        penalty(p) - q * (_half_spread(p) + p.impact * q) + np.zeros((1, 1, len(p.levels)))
    )
    return out


def sold(p: BookParams, shares: float) -> tuple[FloatArray, IntArray]:
    """(n, index of q - n) of an order of `shares` (a multiple of c) from every grid inventory."""
    n = np.minimum(shares, p.grid)
    index = np.minimum(np.arange(p.G) + round(shares / p.clip), p.G - 1)
    return n, index


def wait_value(p: BookParams, EW: FloatArray) -> FloatArray:
    """-lambda_b q^2 / Q + q e(iota) + E' W_{k+1}(q)."""
    out: FloatArray = penalty(p) + _inventory(p) * p.expected_move + EW
    return out


def limit_value(p: BookParams, depth: float, EW: FloatArray) -> FloatArray:
    """-lambda_b q^2/Q + (q - pf n) e + pf [n (s/2 + d) tau + E'W(q - n)] + (1 - pf) E'W(q)."""
    n, after = sold(p, p.clip)
    n3 = n[:, None, None]
    pf = p.fill_probability(depth)  # (L,)
    gain = n3 * (_half_spread(p) + depth * p.tick - p.expected_move) + EW[after] - EW
    out: FloatArray = wait_value(p, EW) + pf * gain
    return out


def market_value(p: BookParams, multiple: int, EW: FloatArray) -> FloatArray:
    """-lambda_b q^2/Q - n (s tau/2 + beta_b n) + (q - n)(e - alpha_b n) + E' W_{k+1}(q - n)."""
    n, after = sold(p, multiple * p.clip)
    n3 = n[:, None, None]
    rest = _inventory(p) - n3
    out: FloatArray = (
        penalty(p)
        - n3 * (_half_spread(p) + p.impact * n3)
        + rest * (p.expected_move - p.permanent_impact * n3)
        + EW[after]
    )
    return out


def action_value(p: BookParams, action: Action, EW: FloatArray) -> FloatArray:
    """Value of taking `action` now and following the policy behind EW, (G, S, L)."""
    if isinstance(action, Wait):
        return wait_value(p, EW)
    if isinstance(action, Limit):
        return limit_value(p, action.depth, EW)
    return market_value(p, action.multiple, EW)


def action_values(p: BookParams, EW: FloatArray, actions: Sequence[Action]) -> FloatArray:
    """(A, G, S, L) values of every action."""
    return np.stack([action_value(p, a, EW) for a in actions])


def _solve(p: BookParams, choose: Any) -> BookSolution:
    """Backward induction: W_{N-1} is the forced sale; choose(k, EW) -> (W_k, policy_k)."""
    shape = (p.N, p.G, len(p.spreads), len(p.levels))
    W = np.empty(shape)
    W[p.N - 1] = terminal_values(p)
    policy: list[Any] = [None] * p.N
    for k in range(p.N - 2, -1, -1):
        W[k], policy[k] = choose(k, next_expectation(p, W[k + 1]))
    policy[p.N - 1] = np.zeros_like(policy[0]) if p.N > 1 else np.zeros(shape[1:])
    return BookSolution(W, np.stack(policy), start_value(p, W[0]))


def solve_menu(p: BookParams, actions: Sequence[Action] | None = None) -> BookSolution:
    """The exact optimum over the menu (or `actions`): policy[k, g, s, i] is a menu index (the
    first best one on ties; any at q = 0 and at k = N - 1, where actions do nothing)."""
    menu = tuple(actions or p.actions)

    def choose(k: int, EW: FloatArray) -> tuple[FloatArray, IntArray]:
        values = action_values(p, EW, menu)
        best = np.argmax(values, axis=0)
        return np.take_along_axis(values, best[None], axis=0)[0], best

    return _solve(p, choose)


def evaluate_table(
    p: BookParams, table: Any, actions: Sequence[Action] | None = None
) -> BookSolution:
    """Exact W of a fixed policy: table[k, g, s, i] (broadcast to (N, G, S, L)) indexes the menu
    (or `actions`)."""
    menu = tuple(actions or p.actions)
    full = np.broadcast_to(
        np.asarray(table, dtype=np.int64), (p.N, p.G, len(p.spreads), len(p.levels))
    )

    def choose(k: int, EW: FloatArray) -> tuple[FloatArray, IntArray]:
        values = action_values(p, EW, menu)
        return np.take_along_axis(values, full[k][None], axis=0)[0], full[k]

    return _solve(p, choose)


# --- SAC's continuous action ------------------------------------------------------------------


def _limit_gain(p: BookParams, EW: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(G_, n tau) with the limit order's value = wait + pf(d) (G_ + n tau d), (G, S, L) each."""
    n, after = sold(p, p.clip)
    n3 = n[:, None, None]
    gain = n3 * (_half_spread(p) - p.expected_move) + EW[after] - EW
    return gain, np.broadcast_to(n3 * p.tick, gain.shape)


def best_depth(p: BookParams, gain: FloatArray, slope: FloatArray) -> tuple[FloatArray, FloatArray]:
    """argmax and max over d in [0, max_depth] of pf(d) (gain + slope d), per state: a grid of
    DEPTH_GRID points, then golden-section search on the best point's two cells (the objective is
    log-concave where positive, so that search is exact)."""
    depths = np.linspace(0.0, p.max_depth, DEPTH_GRID)
    pf = p.fill_probability(depths)  # (L, D)
    grid = pf[None, None] * (gain[..., None] + slope[..., None] * depths)  # (G, S, L, D)
    j = np.argmax(grid, axis=-1)
    lo = depths[np.maximum(j - 1, 0)]
    hi = depths[np.minimum(j + 1, DEPTH_GRID - 1)]
    F = p.fill[None, None, :] + np.zeros_like(gain)

    def h(d: FloatArray) -> FloatArray:
        out: FloatArray = -np.expm1(-F * np.exp(-p.fill_decay * d)) * (gain + slope * d)
        return out

    a, b = hi - INV_PHI * (hi - lo), lo + INV_PHI * (hi - lo)
    ha, hb = h(a), h(b)
    for _ in range(GOLDEN_STEPS):
        left = ha >= hb  # the maximum lies in [lo, b]
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
        b_new = np.where(left, a, lo + INV_PHI * (hi - lo))
        a_new = np.where(left, hi - INV_PHI * (hi - lo), b)
        hb_new = np.where(left, ha, h(b_new))
        ha_new = np.where(left, h(a_new), hb)
        a, b, ha, hb = a_new, b_new, ha_new, hb_new
    d = (lo + hi) / 2
    best_grid = np.take_along_axis(grid, j[..., None], axis=-1)[..., 0]
    refined = h(d)
    better = refined > best_grid
    return np.where(better, d, depths[j]), np.where(better, refined, best_grid)


def solve_continuous(p: BookParams) -> BookSolution:
    """The exact optimum over SAC's actions a in [-M, max_depth]: per state the best of
    `market 1` .. `market M` and `limit d`, d in [0, max_depth] (no `wait`). policy[k, g, s, i]
    is the action a (-m for `market m`, the depth d for a limit order)."""
    M = p.max_market

    def choose(k: int, EW: FloatArray) -> tuple[FloatArray, FloatArray]:
        gain, slope = _limit_gain(p, EW)
        depth, extra = best_depth(p, gain, slope)
        value = wait_value(p, EW) + extra
        action = depth
        for m in range(1, M + 1):
            v = market_value(p, m, EW)
            better = v > value
            value = np.where(better, v, value)
            action = np.where(better, -float(m), action)
        return value, action

    return _solve(p, choose)


# --- closed forms -----------------------------------------------------------------------------


def twap_expected_shortfall(p: BookParams) -> float:
    """E[IS] of TWAP (market orders of Q/N), $: Q sbar tau / 2 + beta_b Q^2 / N
    + alpha_b Q^2 (N - 1) / (2N) - ebar Q (N - 1) / 2.

    MODEL.md writes the last term ebar Q^2 (N - 1) / (2N); but ebar is the mid's drift in $ per
    step, not per share sold, so the k-th sale of Q/N shares gains k ebar per share: the sum is
    ebar Q (N - 1) / 2 (the two agree only where ebar = 0, as at the defaults)."""
    Q, N = p.Q, p.N
    return (
        Q * p.mean_spread * p.tick / 2
        + p.impact * Q * Q / N
        + p.permanent_impact * Q * Q * (N - 1) / (2 * N)
        - p.mean_expected_move * Q * (N - 1) / 2
    )


def twap_expected_cost(p: BookParams) -> float:
    """E[C] of TWAP: E[IS] + lambda_b Q (N + 1)(2N + 1) / (6N), $."""
    N = p.N
    return twap_expected_shortfall(p) + p.risk_aversion * p.Q * (N + 1) * (2 * N + 1) / (6 * N)


def advantage_share(cost_twap: float, cost: float, cost_optimum: float) -> float:
    """(C_TWAP - C) / (C_TWAP - C_opt): the share of the optimum's advantage a strategy takes."""
    return (cost_twap - cost) / (cost_twap - cost_optimum)
