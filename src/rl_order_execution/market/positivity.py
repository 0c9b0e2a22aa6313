"""Which markets are refused (docs/MODEL.md, "Which markets are refused"): the one rule, on plain
numbers.

On the path without price shocks a schedule n executes step k at
P0 - alpha (n_0 + ... + n_{k-1}) - beta_k n_k. The linear model stays well defined for any trade,
so a market is refused only where ordinary execution is nonsense: alpha Q >= P0, or TWAP or VWAP
would execute some step at a price <= 0. Where only the largest trade the agent's action space
allows (with the whole order still held) would, the caller warns and goes on.

Settings validation and the replay loader both call `refused_execution`; callers word the message.
This module imports numpy only, so that it can move with the market's math.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

TWAP, VWAP, LARGEST, WHOLE_ORDER = "TWAP", "VWAP", "the largest trade", "the whole order"


@dataclass(frozen=True)
class Execution:
    """One trade of a schedule on the path without shocks: `trade` shares at step `step` execute
    at `price`. WHOLE_ORDER is the order's permanent impact alone: `price` is P0 - alpha Q, the
    mid after the last step."""

    schedule: str
    step: int
    trade: float
    price: float


def shockless_prices(P0: float, alpha: float, betas: FloatArray, trades: FloatArray) -> FloatArray:
    """P0 - alpha (n_0 + ... + n_{k-1}) - beta_k n_k for each row of trades (..., N)."""
    sold_before = np.cumsum(trades, axis=-1) - trades
    out: FloatArray = P0 - alpha * sold_before - betas * trades
    return out


def _lowest(schedule: str, trades: FloatArray, prices: FloatArray) -> Execution | None:
    """The trade at the lowest price, if that price is <= 0 (rows: any schedule of that kind)."""
    flat = int(np.argmin(prices))
    if prices.flat[flat] > 0:
        return None
    row, step = np.unravel_index(flat, prices.shape) if prices.ndim > 1 else (0, flat)
    trade = trades[row, step] if trades.ndim > 1 else trades[step]
    return Execution(schedule, int(step), float(trade), float(prices.flat[flat]))


def refused_execution(
    P0: float, alpha: float, Q: float, betas: FloatArray, shares: FloatArray
) -> Execution | None:
    """Why the market is refused, or None: alpha Q >= P0 (WHOLE_ORDER), else TWAP's (n_k = Q/N)
    or VWAP's (n_k = Q w_k, one row of shares w per window start) lowest price when <= 0."""
    N = betas.shape[-1]
    if alpha * Q >= P0:
        return Execution(WHOLE_ORDER, N - 1, Q, P0 - alpha * Q)
    twap = np.full(N, Q / N)
    refused = _lowest(TWAP, twap, shockless_prices(P0, alpha, betas, twap))
    if refused is not None:
        return refused
    vwap = Q * np.asarray(shares, dtype=np.float64)
    return _lowest(VWAP, vwap, shockless_prices(P0, alpha, betas, vwap))


def largest_trades(Q: float, N: int, speed: float, rate_basis: str) -> FloatArray:
    """The largest trade in each step with the whole order still held: `speed` times the TWAP
    rate (Q/(N-k) or Q/N by rate basis), at most Q, and the whole order at the last step."""
    k = np.arange(N)
    base = Q / (N - k) if rate_basis == "remaining" else np.full(N, Q / N)
    out: FloatArray = np.minimum(Q, speed * base)
    out[-1] = Q
    return out


def risky_largest_trade(P0: float, betas: FloatArray, trades: FloatArray) -> Execution | None:
    """The largest trade's lowest price, with the whole order held (no permanent impact yet),
    when it is <= 0; None where every such trade prices above zero."""
    return _lowest(LARGEST, trades, P0 - betas * trades)


def describe(e: Execution) -> str:
    """The execution in words, for a one-line refusal or warning."""
    if e.schedule == WHOLE_ORDER:
        return (
            f"selling the whole order ({e.trade:.6g} shares by step {e.step}) would leave the "
            f"mid at {e.price:.6g} by permanent impact alone"
        )
    held = " with the whole order held" if e.schedule == LARGEST else ""
    return (
        f"{e.schedule} would sell {e.trade:.6g} shares at step {e.step}{held} at a price of "
        f"{e.price:.6g} (<= 0) on the path without shocks"
    )
