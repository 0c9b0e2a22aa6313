"""Exact moments of deterministic schedules, from what the price model knows in closed form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rl_order_execution.exact.schedules import (
    almgren_chriss_schedule,
    inventory_path,
    trades_from_inventory,
)
from rl_order_execution.market import FloatArray, MarketParams


class ScheduleMoments(NamedTuple):
    """Exact E[IS], Var[IS] and E[C] ($) of a deterministic schedule; Var[IS] is None where the
    price model has no closed-form covariance (GARCH)."""

    e_is: float
    var_is: float | None
    e_c: float

    @property
    def std_is(self) -> float | None:
        return None if self.var_is is None else math.sqrt(max(self.var_is, 0.0))


def check_schedule(p: MarketParams, trades: FloatArray) -> FloatArray:
    """The trades as float64 (N,), which must sum to Q."""
    n = np.asarray(trades, dtype=np.float64)
    if n.shape != (p.N,):
        raise ValueError(f"a schedule needs {p.N} trades, got shape {n.shape}")
    if abs(float(n.sum()) - p.Q) > 1e-6 * max(p.Q, 1.0):
        raise ValueError(f"trades sum to {float(n.sum())}, not Q = {p.Q}")
    return n


def price_moments(p: MarketParams, trades: FloatArray) -> tuple[FloatArray, FloatArray | None]:
    """Exact mean (N,) and covariance (N, N) of the mid prices S_0..S_{N-1} under a schedule
    (covariance None where the price model has no closed form)."""
    return p.prices.price_moments(p, trades)


def schedule_moments(p: MarketParams, trades: FloatArray) -> ScheduleMoments:
    """Exact (E[IS], Var[IS], E[C]) in $ of a deterministic schedule n_0..n_{N-1} summing to Q."""
    n = check_schedule(p, trades)
    mean, cov = price_moments(p, n)
    impact = p.beta * float(n @ n) if p.is_flat else float(n @ (p.betas * n))
    e_is = p.notional - float(n @ mean) + impact
    q = inventory_path(p, n)[:-1]
    var = None if cov is None else float(n @ cov @ n)
    return ScheduleMoments(e_is, var, e_is + p.lam * float(q @ q) / p.Q)


def efficient_frontier(
    p: MarketParams, lambdas: Sequence[float]
) -> list[tuple[float, float, float]]:
    """(lam, E[IS], Std[IS]) of the Almgren-Chriss schedule for each risk aversion lam; empty
    where the price model has no closed-form variance."""
    out = []
    for lam in lambdas:
        q = almgren_chriss_schedule(p.with_(lam=float(lam)))
        m = schedule_moments(p, trades_from_inventory(q))
        if m.std_is is None:
            return []
        out.append((float(lam), m.e_is, m.std_is))
    return out
