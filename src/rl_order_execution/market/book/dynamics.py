"""The book market's dynamics (docs/MODEL.md, "Limit-order book market") as pure numpy functions
over a leading batch axis. The envs, the evaluation and the sample generator all call these.

Randomness: at reset one uniform per episode for s_0, then one for iota_0; at every step four,
for the fill, D_k, the spread and the imbalance, each for the whole batch, drawn whatever the
actions (also once an episode's order is done), so that strategies run on one seed see the same
market ("common random numbers"). Uniforms become outcomes by inverse CDF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_order_execution.market.book.params import (
    BookParams,
    BoolArray,
    FloatArray,
    IntArray,
    Limit,
    Market,
    Wait,
)

OBS_DIM = 6  # time remaining, inventory remaining, price vs arrival, last move, spread, imbalance
RESET_DRAWS = 2  # uniforms per episode at reset: s_0, iota_0
STEP_DRAWS = 4  # uniforms per episode per step: fill, D_k, s_{k+1}, iota_{k+1}

# order kinds
WAIT, LIMIT, MARKET = 0, 1, 2

Int8Array = np.ndarray[Any, np.dtype[np.int8]]


@dataclass(frozen=True)
class BookState:
    """B episodes: step k, inventory q, mid S, spread index s (into params.spreads), imbalance
    index i (into params.levels) and the last exogenous move D_{k-1} (ticks, 0 at k = 0)."""

    k: IntArray
    q: FloatArray
    S: FloatArray
    spread: IntArray
    imbalance: IntArray
    last_move: FloatArray

    def __len__(self) -> int:
        return len(self.q)


@dataclass(frozen=True)
class Orders:
    """One order per episode: kind (WAIT, LIMIT, MARKET), depth (ticks behind the ask, LIMIT)
    and shares (asked for, MARKET; a limit order is always min(c, q))."""

    kind: Int8Array
    depth: FloatArray
    shares: FloatArray


@dataclass(frozen=True)
class StepInfo:
    """What one step did, per episode: shares sold n_k, proceeds ($), reward (bp), whether a limit
    order was posted (k < N - 1 and q_k > 0) and filled, the shares it sold (passive), the market
    shares, the exogenous move D_k (ticks) and whether the episode is over."""

    shares: FloatArray
    proceeds: FloatArray
    reward: FloatArray
    posted: BoolArray
    filled: BoolArray
    passive: FloatArray
    market: FloatArray
    move: FloatArray
    terminated: BoolArray


# --- randomness -------------------------------------------------------------------------------


def draw_reset(rng: np.random.Generator, batch: int) -> FloatArray:
    """(2, B) uniforms: row 0 for s_0 of every episode, then row 1 for iota_0."""
    return rng.random((RESET_DRAWS, batch))


def draw_step(rng: np.random.Generator, batch: int) -> FloatArray:
    """(4, B) uniforms, in the order fill, D_k, spread, imbalance, each row for the whole batch
    (one call fills row after row, exactly as four calls would)."""
    return rng.random((STEP_DRAWS, batch))


def categorical(cdf: FloatArray, rows: IntArray, u: FloatArray) -> IntArray:
    """Inverse CDF: the first outcome whose cumulative probability in row `rows` exceeds u, i.e.
    the number of cumulative probabilities <= u (column by column: no (B, n) temporaries; the
    last column is inf, never <= u)."""
    out = np.zeros(len(u), dtype=np.int64)
    for column in cdf.T[:-1]:
        out += column[rows] <= u
    return out


# --- reset and step ---------------------------------------------------------------------------


def start(p: BookParams, u: FloatArray) -> BookState:
    """Episodes at k = 0, q = Q, S = P0, (s_0, iota_0) from the stationary laws by inverse CDF of
    the (2, B) uniforms u."""
    batch = u.shape[1]
    zeros = np.zeros(batch, dtype=np.int64)
    spread_cdf, imbalance_cdf = p.start_cdf
    return BookState(
        k=zeros,
        q=np.full(batch, p.Q),
        S=np.full(batch, p.P0),
        spread=categorical(spread_cdf, zeros, u[0]),
        imbalance=categorical(imbalance_cdf, zeros, u[1]),
        last_move=np.zeros(batch),
    )


def reset(p: BookParams, rng: np.random.Generator, batch: int) -> BookState:
    """B episodes at their start, drawing their (s_0, iota_0) from rng."""
    return start(p, draw_reset(rng, batch))


def exogenous(p: BookParams, s: BookState, u: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """(D_k in ticks, s_{k+1}, iota_{k+1}) from rows 1-3 of the step's uniforms: the same for
    every strategy."""
    up, down = p.up[s.imbalance], p.down[s.imbalance]
    move = np.where(u[1] < up, 1.0, np.where(u[1] < up + down, -1.0, 0.0))
    spread = categorical(p.spread_cdf, s.spread, u[2])
    imbalance = categorical(p.imbalance_cdf, s.imbalance, u[3])
    return move, spread, imbalance


def advance(
    p: BookParams, s: BookState, orders: Orders, u: FloatArray
) -> tuple[BookState, StepInfo]:
    """One step of every episode with the (4, B) uniforms u: trade, reward, then the market
    moves. At k = N - 1 the order is ignored and all of q_k is sold at bid - beta_b q_k."""
    last = s.k >= p.N - 1
    held = s.q > 0
    half = p.spreads[s.spread] * (p.tick / 2)
    # a sell limit order of min(c, q) at the ask plus d ticks fills in full iff u < pf
    posted = (orders.kind == LIMIT) & held & ~last
    depth = np.where(posted, orders.depth, 0.0)
    pf = -np.expm1(-p.fill[s.imbalance] * np.exp(-p.fill_decay * depth))
    filled = posted & (u[0] < pf)
    passive = np.where(filled, np.minimum(p.clip, s.q), 0.0)
    # a market order (and the last step's sale) walks the book from the bid
    asked = np.where(orders.kind == MARKET, orders.shares, 0.0)
    market = np.where(last, s.q, np.minimum(np.maximum(asked, 0.0), s.q))
    proceeds = passive * (s.S + half + depth * p.tick) + market * (s.S - half - p.impact * market)
    shares = passive + market
    reward = (proceeds - shares * p.P0 - p.risk_aversion * s.q * s.q / p.Q) * p.bps
    move, spread, imbalance = exogenous(p, s, u)
    q_next = np.where(last, 0.0, np.maximum(s.q - shares, 0.0))
    k_next = s.k + 1
    nxt = BookState(
        k=k_next,
        q=q_next,
        S=s.S + p.tick * move - p.permanent_impact * market,
        spread=spread,
        imbalance=imbalance,
        last_move=move,
    )
    info = StepInfo(
        shares=shares,
        proceeds=proceeds,
        reward=reward,
        posted=posted,
        filled=filled,
        passive=passive,
        market=market,
        move=move,
        terminated=(k_next >= p.N) | (q_next <= 0),
    )
    return nxt, info


def step(
    p: BookParams, s: BookState, orders: Orders, rng: np.random.Generator
) -> tuple[BookState, StepInfo]:
    """`advance` with this step's four uniforms drawn from rng."""
    return advance(p, s, orders, draw_step(rng, len(s)))


# --- actions to orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class Menu:
    """The menu as arrays: kind, depth and market shares of each action index."""

    kind: Int8Array
    depth: FloatArray
    shares: FloatArray

    @staticmethod
    def of(p: BookParams) -> Menu:
        kind, depth, shares = [], [], []
        for a in p.actions:
            kind.append(WAIT if isinstance(a, Wait) else LIMIT if isinstance(a, Limit) else MARKET)
            depth.append(a.depth if isinstance(a, Limit) else 0.0)
            shares.append(a.multiple * p.clip if isinstance(a, Market) else 0.0)
        return Menu(np.array(kind, np.int8), np.array(depth), np.array(shares))


def menu_orders(p: BookParams, actions: Any, menu: Menu | None = None) -> Orders:
    """Orders of menu indices (B,)."""
    m = menu or Menu.of(p)
    a = np.asarray(actions, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= p.n_actions):
        raise ValueError(f"menu actions are 0..{p.n_actions - 1}, got {a.min()}..{a.max()}")
    return Orders(m.kind[a], m.depth[a], m.shares[a])


def continuous_bounds(p: BookParams) -> tuple[float, float]:
    """SAC's action interval [-M, max_depth]."""
    return -float(p.max_market), p.max_depth


def continuous_orders(p: BookParams, actions: Any) -> Orders:
    """Orders of continuous actions a (B,), clipped into [-M, max_depth]: a < 0 is
    `market ceil(-a)`, a >= 0 is `limit a` (a real depth)."""
    low, high = continuous_bounds(p)
    a = np.minimum(np.maximum(np.asarray(actions, dtype=np.float64).reshape(-1), low), high)
    is_market = a < 0
    kind = np.where(is_market, MARKET, LIMIT).astype(np.int8)
    shares = np.where(is_market, np.ceil(-a) * p.clip, 0.0)
    return Orders(kind, np.where(is_market, 0.0, a), shares)


def market_orders(shares: FloatArray) -> Orders:
    """Market orders of any real size (TWAP's q_k / (N - k))."""
    n = len(shares)
    return Orders(np.full(n, MARKET, np.int8), np.zeros(n), np.asarray(shares, np.float64))


def limit_orders(batch: int, depth: float) -> Orders:
    """The same limit order in every episode."""
    return Orders(np.full(batch, LIMIT, np.int8), np.full(batch, float(depth)), np.zeros(batch))


# --- observation ------------------------------------------------------------------------------


def features(p: BookParams, s: BookState) -> np.ndarray[Any, np.dtype[np.float32]]:
    """(B, 6) float32: (N - k)/N, q/Q, (S - P0)/(tau sqrt(pbar N)), D_{k-1}, s_k (ticks), iota_k."""
    obs = np.empty((len(s), OBS_DIM), dtype=np.float32)
    obs[:, 0] = (p.N - s.k) / p.N
    obs[:, 1] = s.q / p.Q
    obs[:, 2] = (s.S - p.P0) / p.price_scale
    obs[:, 3] = s.last_move
    obs[:, 4] = p.spreads[s.spread]
    obs[:, 5] = p.levels[s.imbalance]
    return obs


def grid_index(p: BookParams, q: FloatArray) -> IntArray:
    """Index of each inventory on params.grid. Menu and continuous actions keep q on it; any
    other positive inventory maps to the nearest positive grid point."""
    j = np.rint((p.Q - q) / p.clip).astype(np.int64)
    out: IntArray = np.where(q <= 1e-9 * p.Q, p.G - 1, np.clip(j, 0, p.G - 2))
    return out
