"""Strategies that follow a fixed plan: a schedule of trades, or a fixed participation."""

from __future__ import annotations

import numpy as np

from rl_order_execution.exact.schedules import POV_FRACTION, vwap_rate, vwap_share
from rl_order_execution.market import FloatArray, MarketParams, MarketState


class ScheduleStrategy:
    """Follow a fixed schedule of trades n_0..n_{N-1}."""

    def __init__(self, name: str, trades: FloatArray) -> None:
        self.name = name
        self.trades = np.asarray(trades, dtype=np.float64)

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.trades[np.minimum(s.k, self.trades.size - 1)]
        return out


class VWAP:
    """Follow the market's expected volume: n_k = q_k w_k / (w_k + ... + w_{N-1}), the share of
    what is left that the market is expected to trade now (q_k / (N - k) once no volume is left)."""

    name = "vwap"

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        if s.windows is None:
            return vwap_rate(p, s.q, s.k)
        # replayed bars: the training profile's shares of each window's positions
        step = np.minimum(s.k, p.N - 1)
        w, left = s.windows.w_at(s.window, step), s.windows.volume_left_at(s.window, step)
        out: FloatArray = s.q * vwap_share(w, left, p.N - step)
        return out


class WindowSchedule:
    """Follow a fixed schedule per replayed window: trades[window, k] (a schedule computed
    for each window before it starts, or with hindsight for the look-ahead bound)."""

    def __init__(self, name: str, trades: FloatArray) -> None:
        self.name = name
        self.trades = np.asarray(trades, dtype=np.float64)

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.trades[s.window, np.minimum(s.k, p.N - 1)]
        return out


class POV:
    """Participation: sell a fixed fraction of the remaining inventory each step."""

    name = "pov"

    def __init__(self, fraction: float = POV_FRACTION) -> None:
        self.fraction = fraction

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.fraction * s.q
        return out
