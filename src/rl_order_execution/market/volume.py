"""Intraday volume (docs/MODEL.md, "Intraday volume"): the share w_k of the market's volume traded
in each step, from a named profile or a file of bin volumes (read and checked in data/profiles.py),
and the temporary impact beta_k it implies.
"""

from __future__ import annotations

import math

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.data.profiles import profile_bins

__all__ = ["MIN_SHARE", "VOLUME_FACTOR", "profile_bins", "step_impacts", "step_shares"]

VOLUME_FACTOR = 20.0  # default market volume over the episode: 20 times the order
MIN_SHARE = 0.1  # a step's share is floored at MIN_SHARE / N (beta_k <= 10 beta)


def step_shares(bins: tuple[float, ...], N: int) -> FloatArray:
    """w_k: the integral over [k/N, (k+1)/N) of the bins' piecewise-constant density (bins cover
    equal parts of the session); 1/N each for no bins (flat)."""
    if not bins:
        return np.full(N, 1.0 / N)
    x = np.asarray(bins, dtype=np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(x) / x.sum()))
    edges = np.linspace(0.0, 1.0, len(x) + 1)
    at_steps = np.interp(np.arange(N + 1) / N, edges, cumulative)
    w: FloatArray = np.diff(at_steps)
    return np.maximum(w, 0.0)


def step_impacts(beta: float, alpha: float, w: FloatArray) -> FloatArray:
    """beta_k = beta / (N clip(w_k, 1/(10 N), beta/(alpha N))) (no upper clip when alpha = 0):
    between alpha and 10 beta, so the expected cost stays convex."""
    N = len(w)
    high = beta / (alpha * N) if alpha > 0 else math.inf
    share = np.minimum(np.maximum(w, MIN_SHARE / N), high)
    out: FloatArray = beta / (N * share)
    return out
