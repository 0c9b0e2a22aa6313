"""A synthetic top-of-book file drawn from the book model (the bundled `book_sample.csv` and the
calibration's test): the exogenous market of `dynamics` (spread, imbalance, mid moves) and, per
row, the highest buy price that the model's fill draw implies."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import numpy as np

from rl_order_execution.market.book.dynamics import (
    BookState,
    draw_reset,
    draw_step,
    exogenous,
    start,
)
from rl_order_execution.market.book.params import BookParams, FloatArray, IntArray

COLUMNS = ("timestamp", "bid", "ask", "bid_size", "ask_size", "buy_high")
STEP_SECONDS = 5
SESSION_OPEN = dt.time(9, 30)
STEPS_PER_SESSION = 4680  # 09:30:00 to 15:59:55 every 5 seconds
NOISE_SHARE = 0.375  # the sizes' imbalance lies within this share of the gap to the next level
MAX_DEPTH_TICKS = 100  # cap on the depth a buy reaches (only with fill_decay 0)


def depth_reached(p: BookParams, level: IntArray, u: FloatArray) -> FloatArray:
    """The depth M (ticks behind the ask, real) that buys reach given the fill uniform u: a limit
    order at depth d fills iff u < 1 - exp(-F exp(-kappa_f d)) iff d <= M; -1 if no buy reaches
    the ask (u >= pf(0))."""
    F = p.fill[level]
    E = -np.log1p(-u)  # u < pf(d) iff E < F exp(-kappa_f d)
    reached = E < F
    with np.errstate(divide="ignore"):
        depth = np.log(F / np.where(reached, E, 1.0)) / max(p.fill_decay, 1e-300)
    out: FloatArray = np.where(reached, np.minimum(depth, MAX_DEPTH_TICKS), -1.0)
    return out


def sample_rows(p: BookParams, sessions: int, seed: int) -> Iterator[str]:
    """CSV lines (header first) of `sessions` trading days of STEPS_PER_SESSION rows, one per
    step: the model's draws from SeedSequence(seed) child 0, the book sizes' noise from child 1.
    Prices are exact multiples of half a tick."""
    market_seed, size_seed = np.random.SeedSequence(seed).spawn(2)
    rng, noise = np.random.default_rng(market_seed), np.random.default_rng(size_seed)
    s = start(p, draw_reset(rng, sessions))
    half_ticks = np.full(sessions, round(2 * p.P0 / p.tick))  # the mid in half ticks
    steps = []
    for _ in range(STEPS_PER_SESSION):
        u = draw_step(rng, sessions)
        depth = depth_reached(p, s.imbalance, u[0])
        move, spread, imbalance = exogenous(p, s, u)
        steps.append((half_ticks.copy(), s.spread, s.imbalance, depth))
        half_ticks = half_ticks + 2 * move.astype(np.int64)
        s = BookState(s.k, s.q, s.S, spread, imbalance, move)
    yield ",".join(COLUMNS)
    day = dt.date(2024, 1, 2)
    for session in range(sessions):
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
        opening = dt.datetime.combine(day, SESSION_OPEN)
        for k, (mid, spread, level, depth) in enumerate(steps):
            when = opening + dt.timedelta(seconds=STEP_SECONDS * k)
            yield _row(
                p,
                when,
                int(mid[session]),
                int(spread[session]),
                int(level[session]),
                float(depth[session]),
                noise,
            )
        day += dt.timedelta(days=1)


def _row(
    p: BookParams,
    when: dt.datetime,
    mid: int,
    spread: int,
    level: int,
    depth: float,
    noise: np.random.Generator,
) -> str:
    width = int(p.spreads[spread])
    bid, ask = mid - width, mid + width  # half ticks
    total = int(noise.integers(200, 2001))
    gap = float(np.diff(p.levels).min()) if len(p.levels) > 1 else 0.4
    spread_x = NOISE_SHARE * gap
    x = float(np.clip(p.levels[level] + noise.uniform(-spread_x, spread_x), -0.97, 0.97))
    bid_size = max(1, min(total - 1, round(total * (1 + x) / 2)))
    buy_high = "" if depth < 0 else _price(p, ask + 2 * math.floor(depth))
    return (
        f"{when.isoformat()}Z,{_price(p, bid)},{_price(p, ask)},{bid_size},"
        f"{total - bid_size},{buy_high}"
    )


def _price(p: BookParams, half_ticks: int) -> str:
    """A price in half ticks as text, with the decimals that half a tick needs."""
    half = p.tick / 2
    decimals = next(d for d in range(16) if abs(half * 10**d - round(half * 10**d)) < 1e-9)
    return f"{half_ticks * half:.{decimals}f}"
