"""Deterministic schedules n_0..n_{N-1} (summing to Q) of the reference strategies."""

from __future__ import annotations

import math

import numpy as np

from rl_order_execution.market import FloatArray, IntArray, MarketParams

POV_FRACTION = 0.1


def inventory_path(p: MarketParams, trades: FloatArray) -> FloatArray:
    """Inventory q_0..q_N left by the trades n_0..n_{N-1}."""
    out: FloatArray = p.Q - np.concatenate(([0.0], np.cumsum(trades)))
    return out


def trades_from_inventory(q: FloatArray) -> FloatArray:
    """Trades n_k = q_k - q_{k+1} of an inventory path."""
    return -np.diff(np.asarray(q, dtype=np.float64))


def effective_impact(p: MarketParams) -> float:
    """Effective quadratic impact beta - alpha/2 of a deterministic schedule (flat volume)."""
    return p.beta - p.alpha / 2


def step_impact(p: MarketParams, k: int) -> float:
    """Effective quadratic impact beta_k - alpha/2 of step k (beta_k = beta on a flat profile)."""
    return float(p.betas[k]) - p.alpha / 2


def ac_kappa(p: MarketParams) -> float:
    """kappa_ac with cosh(kappa_ac) = 1 + lam / (2 Q (beta - alpha/2)), computed without 0/0."""
    if effective_impact(p) <= 0:
        raise ValueError("Almgren-Chriss needs beta > alpha / 2")
    x = p.lam / (2 * p.Q * effective_impact(p))
    return math.log1p(x + math.sqrt(x * (2 + x)))


def almgren_chriss_schedule(p: MarketParams) -> FloatArray:
    """Inventory q_0..q_N of the discrete Almgren-Chriss schedule (TWAP when lam = 0)."""
    k = np.arange(p.N + 1, dtype=np.float64)
    c = ac_kappa(p)
    if c == 0.0:
        out: FloatArray = p.Q * (p.N - k) / p.N
        return out
    # sinh(c(N-k)) / sinh(cN) written with expm1 so neither tiny nor huge c under/overflows
    q: FloatArray = p.Q * np.exp(-c * k) * np.expm1(-2 * c * (p.N - k)) / np.expm1(-2 * c * p.N)
    return q


def twap_schedule(p: MarketParams) -> FloatArray:
    """TWAP trades Q/N."""
    return np.full(p.N, p.Q / p.N)


def vwap_share(w: FloatArray, left: FloatArray, steps_left: IntArray) -> FloatArray:
    """w_k / (w_k + ... + w_{N-1}): VWAP's share of what is left; 1 / (N - k) without volume."""
    out: FloatArray = np.where(left > 0, w / np.maximum(left, 1e-300), 1.0 / steps_left)
    return out


def vwap_rate(p: MarketParams, q: FloatArray, k: IntArray) -> FloatArray:
    """VWAP's trade q_k w_k / (w_k + ... + w_{N-1}); q_k / (N - k) where no volume is left."""
    step = np.minimum(k, p.N - 1)
    out: FloatArray = q * vwap_share(p.w[step], p.volume_left[step], p.N - step)
    return out


def vwap_schedule(p: MarketParams) -> FloatArray:
    """Trades of the VWAP strategy: the expected volume share of what is left, every step."""
    n, q = np.empty(p.N), p.Q
    for k in range(p.N):
        step = np.array([k], dtype=np.int64)
        n[k] = q if k == p.N - 1 else float(vwap_rate(p, np.array([q]), step)[0])
        q -= n[k]
    return n


def linear_schedule(p: MarketParams, front: bool) -> FloatArray:
    """Trades decreasing (front) or increasing (back) linearly in k, summing to Q."""
    k = np.arange(p.N, dtype=np.float64)
    w = p.N - k if front else k + 1
    n: FloatArray = p.Q * w / w.sum()
    return n


def pov_schedule(p: MarketParams, fraction: float) -> FloatArray:
    """Trades of selling fraction * q_k per step, everything left at the last step."""
    q = p.Q * (1 - fraction) ** np.arange(p.N, dtype=np.float64)
    n: FloatArray = fraction * q
    n[-1] = q[-1]
    return n
