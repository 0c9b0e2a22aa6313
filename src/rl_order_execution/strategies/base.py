"""The strategy protocol: look at the market state, ask for a trade size.

The market then applies its rules (never more than held, everything at the last step), so TWAP,
the exact optimum and the trained agent all run through the same code on the same shocks."""

from __future__ import annotations

from typing import Protocol

from rl_order_execution.market import FloatArray, MarketParams, MarketState, twap_rate


class Strategy(Protocol):
    """observe -> desired shares for each of B episodes (non-anticipating: no future shocks)."""

    name: str

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray: ...


class TWAP:
    """Sell the remaining order evenly over the remaining steps: n_k = q_k / (N - k)."""

    name = "twap"

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        return twap_rate(p, s.q, s.k)
