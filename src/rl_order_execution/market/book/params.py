"""The limit-order book market's numbers (docs/MODEL.md, "Limit-order book market"): settings
validated once into a frozen `BookParams`, with the chains' stationary laws as properties."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypeAlias

import numpy as np
from scipy.sparse.csgraph import connected_components

from rl_order_execution.errors import SettingsError

FloatArray: TypeAlias = np.ndarray[Any, np.dtype[np.float64]]
IntArray: TypeAlias = np.ndarray[Any, np.dtype[np.int64]]
BoolArray: TypeAlias = np.ndarray[Any, np.dtype[np.bool_]]

DEFAULT_HORIZON = 60  # N on this market unless simulation.time_horizon is set
ROW_SUM_TOLERANCE = 1e-6  # a transition row may miss 1 by this much (it is then renormalised)

DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "tick": 0.01,
        "spreads": (1, 2),
        "spread_transition": ((0.9, 0.1), (0.5, 0.5)),
        "imbalance_levels": (-0.8, -0.4, 0.0, 0.4, 0.8),
        "imbalance_persistence": 0.8,
        "move_probability": 0.3,
        "imbalance_signal": 0.6,
        "imbalance_transition": None,
        "move_table": None,
        "fill_rate": 0.6,
        "fill_imbalance": 0.5,
        "fill_table": None,
        "fill_decay": 0.7,
        "clip": 50,
        "book_impact": 2e-5,
        "book_permanent_impact": 0.0,
        "book_risk_aversion": 2e-4,
        "book_actions": ("wait", "limit 0", "limit 1", "limit 2", "market 1", "market 2"),
        "max_depth": 5.0,
    }
)


class BookSettingsError(SettingsError):
    """Settings of the book market that cannot run: one line naming the setting and what is
    allowed (a SettingsError: the CLI prints it and exits 2)."""


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Post nothing this step."""

    def __str__(self) -> str:
        return "wait"


@dataclass(frozen=True)
class Limit:
    """A sell limit order of min(c, q) shares `depth` ticks behind the best ask (a real depth)."""

    depth: float

    def __str__(self) -> str:
        return f"limit {self.depth:g}"


@dataclass(frozen=True)
class Market:
    """A market order of min(multiple * c, q) shares, walking the book."""

    multiple: int

    def __str__(self) -> str:
        return f"market {self.multiple}"


Action: TypeAlias = Wait | Limit | Market


def parse_action(text: str) -> Action:
    """`wait`, `limit d` (d >= 0, real) or `market m` (integer m >= 1)."""
    words = str(text).strip().lower().split()
    allowed = "each action is 'wait', 'limit d' (d >= 0) or 'market m' (integer m >= 1)"
    if words == ["wait"]:
        return Wait()
    if len(words) == 2 and words[0] == "limit":
        depth = _float_or_none(words[1])
        if depth is not None and depth >= 0:
            return Limit(depth + 0.0)  # + 0.0: -0 is 0
    if len(words) == 2 and words[0] == "market":
        multiple = _float_or_none(words[1])
        if multiple is not None and multiple >= 1 and multiple == int(multiple):
            return Market(int(multiple))
    raise BookSettingsError(f"book.book_actions: {text!r} is not an action; {allowed}")


def _float_or_none(word: str) -> float | None:
    try:
        value = float(word)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --- the parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BookParams:
    """The resolved book market, with the model's symbols in the comments. Arrays are read-only;
    index s runs over `spreads`, index i over `levels` (the imbalance levels)."""

    Q: float  # shares to sell
    N: int  # decision steps
    P0: float  # arrival mid price, $
    tick: float  # tau, $
    spreads: FloatArray  # (S,) the spread's values, ticks
    spread_transition: FloatArray  # (S, S) Pi_s
    levels: FloatArray  # (L,) imbalance levels iota
    imbalance_transition: FloatArray  # (L, L)
    up: FloatArray  # (L,) P(D = +1 | iota)
    down: FloatArray  # (L,) P(D = -1 | iota)
    fill: FloatArray  # (L,) F(iota): marketable buys reaching the best ask per step
    fill_decay: float  # kappa_f, per tick behind the ask
    clip: float  # c, shares per order
    impact: float  # beta_b, $ per share per share of a market order
    permanent_impact: float  # alpha_b, $ per share of a market order
    risk_aversion: float  # lambda_b
    actions: tuple[Action, ...]  # the menu
    max_depth: float  # SAC's deepest limit order, ticks

    def __post_init__(self) -> None:
        for name in ("spreads", "spread_transition", "levels", "imbalance_transition"):
            _freeze(self, name)
        for name in ("up", "down", "fill"):
            _freeze(self, name)

    @classmethod
    def from_settings(
        cls,
        section: Mapping[str, Any] | None = None,
        total_shares: float = 1000.0,
        time_horizon: int | None = None,
        start_price: float = 100.0,
    ) -> BookParams:
        """The market of a `book:` settings section (missing keys take DEFAULTS; None means
        not given) and the three `simulation` numbers; time_horizon None is 60. Raises
        BookSettingsError, one line naming the setting, for anything MODEL.md refuses."""
        return _resolve(dict(section or {}), total_shares, time_horizon, start_price)

    @classmethod
    def default(cls) -> BookParams:
        """The defaults: 1,000 shares over 60 steps from $100."""
        return cls.from_settings()

    # --- derived quantities ---

    @property
    def notional(self) -> float:
        return self.Q * self.P0

    @property
    def bps(self) -> float:
        """Multiply $ by this to get basis points of the arrival notional."""
        return 1e4 / self.notional

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    @property
    def max_market(self) -> int:
        """M: the largest `market m` of the menu (0 without market orders)."""
        return max((a.multiple for a in self.actions if isinstance(a, Market)), default=0)

    @cached_property
    def grid(self) -> FloatArray:
        """The inventories menu actions reach, {Q - j c} then 0, decreasing (G,)."""
        steps = math.floor(self.Q / self.clip + 1e-9)
        q: FloatArray = self.Q - self.clip * np.arange(steps + 1, dtype=np.float64)
        q = np.where(np.abs(q) <= 1e-9 * self.Q, 0.0, q)
        if q[-1] > 0:
            q = np.append(q, 0.0)
        return _readonly(q)

    @property
    def G(self) -> int:
        return len(self.grid)

    @cached_property
    def stationary_spread(self) -> FloatArray:
        """pi_s, with pi_s Pi_s = pi_s."""
        return _readonly(stationary_law(self.spread_transition))

    @cached_property
    def stationary_imbalance(self) -> FloatArray:
        """pi_I, with pi_I P = pi_I."""
        return _readonly(stationary_law(self.imbalance_transition))

    @property
    def mean_spread(self) -> float:
        """sbar, ticks."""
        return float(self.stationary_spread @ self.spreads)

    @cached_property
    def expected_move(self) -> FloatArray:
        """e(iota) = tau (up - down): the mid's expected move in a step, $ (L,)."""
        return _readonly(self.tick * (self.up - self.down))

    @property
    def mean_expected_move(self) -> float:
        """ebar, $."""
        return float(self.stationary_imbalance @ self.expected_move)

    @property
    def mean_move_probability(self) -> float:
        """pbar: the stationary mean of up + down."""
        return float(self.stationary_imbalance @ (self.up + self.down))

    @cached_property
    def price_scale(self) -> float:
        """Denominator of the price feature: tau sqrt(pbar N) (tau if pbar = 0)."""
        pbar = self.mean_move_probability
        return self.tick * math.sqrt((pbar if pbar > 0 else 1.0) * self.N)

    def fill_probability(self, depth: Any) -> FloatArray:
        """pf = 1 - exp(-F(iota) exp(-kappa_f d)), (L,) per level for a scalar depth, or
        broadcast as F[:, None] against an array of depths (L, D)."""
        d = np.asarray(depth, dtype=np.float64)
        F = self.fill if d.ndim == 0 else self.fill.reshape((-1,) + (1,) * d.ndim)
        out: FloatArray = -np.expm1(-F * np.exp(-self.fill_decay * d))
        return out

    @cached_property
    def spread_cdf(self) -> FloatArray:
        """Cumulative rows of Pi_s for the inverse-CDF draw (inf past the last possible one)."""
        return _readonly(cumulative_rows(self.spread_transition))

    @cached_property
    def imbalance_cdf(self) -> FloatArray:
        """Cumulative rows of the imbalance chain."""
        return _readonly(cumulative_rows(self.imbalance_transition))

    @cached_property
    def start_cdf(self) -> tuple[FloatArray, FloatArray]:
        """Cumulative stationary laws (1, S) and (1, L), for the draw of (s_0, iota_0)."""
        spread = cumulative_rows(self.stationary_spread[None, :])
        imbalance = cumulative_rows(self.stationary_imbalance[None, :])
        return _readonly(spread), _readonly(imbalance)

    def describe(self) -> str:
        """One line: the menu and the market's main numbers."""
        menu = ", ".join(map(str, self.actions))
        return (
            f"book market: Q={self.Q:g}, N={self.N}, P0={self.P0:g}, tick={self.tick:g}, "
            f"spreads={self.spreads.tolist()}, clip={self.clip:g}, menu [{menu}]"
        )


def _freeze(p: BookParams, name: str) -> None:
    object.__setattr__(p, name, _readonly(np.array(getattr(p, name), dtype=np.float64)))


def _readonly(x: FloatArray) -> FloatArray:
    x.setflags(write=False)
    return x


def cumulative_rows(P: FloatArray) -> FloatArray:
    """Row-wise cumulative probabilities; entries from a row's last positive one on are inf, so
    that rounding never picks an outcome of probability 0."""
    cdf = np.cumsum(P, axis=1)
    for r, row in enumerate(P):
        cdf[r, int(np.flatnonzero(row > 0)[-1]) :] = np.inf
    return cdf


def stationary_law(P: FloatArray) -> FloatArray:
    """The unique pi >= 0 with pi P = pi, sum 1 (P validated to have one)."""
    n = P.shape[0]
    system = np.vstack([P.T - np.eye(n), np.ones((1, n))])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    pi = np.linalg.lstsq(system, rhs, rcond=None)[0]
    pi = np.where(pi > 1e-14, pi, 0.0)  # transient states: exactly 0
    out: FloatArray = pi / pi.sum()
    return out


def closed_classes(P: FloatArray) -> int:
    """How many closed communicating classes the chain has: exactly 1 iff its stationary law is
    unique."""
    count, labels = connected_components(P > 0, directed=True, connection="strong")
    leaves = 0
    for c in range(count):
        members = labels == c
        if not (P[np.ix_(members, ~members)] > 0).any():
            leaves += 1
    return leaves


# --- validation -------------------------------------------------------------------------------


def _fail(name: str, message: str, section: str = "book") -> BookSettingsError:
    return BookSettingsError(f"{section}.{name}: {message}")


def _number(name: str, value: Any, section: str = "book") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise _fail(name, f"{value!r} is not a number", section)
    x = float(value)
    if not math.isfinite(x):
        raise _fail(name, f"{value!r} is not a finite number", section)
    return x


def _at_least(name: str, value: Any, low: float = 0.0) -> float:
    x = _number(name, value)
    if x < low:
        raise _fail(name, f"{x:g} is negative; it must be >= {low:g}")
    return x


def _vector(name: str, value: Any, length: int | None = None, what: str = "") -> FloatArray:
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise _fail(name, f"{value!r} is not a list of numbers")
    out = np.array([_number(name, v) for v in value], dtype=np.float64)
    if length is not None and len(out) != length:
        raise _fail(name, f"{len(out)} entries; it needs {length}, one per {what}")
    return out


def _matrix(name: str, value: Any, n: int, what: str) -> FloatArray:
    """A row-stochastic n x n matrix with a unique stationary law (rows renormalised)."""
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray) or not len(value):
        raise _fail(name, f"{value!r} is not a list of rows; it must be {n} x {n}, one per {what}")
    rows = [_vector(name, row) for row in value]
    if len(rows) != n or any(len(r) != n for r in rows):
        width = "/".join(sorted({str(len(r)) for r in rows}))
        raise _fail(name, f"{len(rows)} rows of {width}; it must be {n} x {n}, one per {what}")
    P = np.array(rows)
    for r, row in enumerate(P, start=1):
        if (row < 0).any():
            raise _fail(name, f"row {r} has a negative entry; entries must be >= 0")
        if abs(row.sum() - 1.0) > ROW_SUM_TOLERANCE:
            raise _fail(name, f"row {r} sums to {row.sum():.6g}; each row must sum to 1")
    P = P / P.sum(axis=1, keepdims=True)
    out: FloatArray = P
    classes = closed_classes(P)
    if classes > 1:
        raise _fail(
            name,
            f"the chain has {classes} closed classes (an identity matrix, for one), so no unique "
            "stationary law; every state must reach one common class",
        )
    return out


def _strictly_increasing(name: str, x: FloatArray) -> None:
    if len(x) == 0:
        raise _fail(name, "empty; it needs at least one value")
    if (np.diff(x) <= 0).any():
        raise _fail(name, f"{x.tolist()} is not strictly increasing; values must increase")


def _spreads(value: Any) -> FloatArray:
    s = _vector("spreads", value)
    _strictly_increasing("spreads", s)
    if (s < 1).any() or (s != np.round(s)).any():
        raise _fail("spreads", f"{s.tolist()}: spreads must be positive integers (ticks)")
    return s


def _levels(value: Any) -> FloatArray:
    iota = _vector("imbalance_levels", value)
    _strictly_increasing("imbalance_levels", iota)
    if (np.abs(iota) > 1).any():
        raise _fail("imbalance_levels", f"{iota.tolist()}: levels must lie in [-1, 1]")
    return iota


def persistence_matrix(rho: float, levels: int) -> FloatArray:
    """Stay with rho, else one level up or down with (1 - rho)/2 each; at an end the move out of
    range stays."""
    P = np.zeros((levels, levels))
    for i in range(levels):
        P[i, i] += rho
        P[i, max(i - 1, 0)] += (1 - rho) / 2
        P[i, min(i + 1, levels - 1)] += (1 - rho) / 2
    return P


def _imbalance_transition(cfg: Mapping[str, Any], L: int) -> FloatArray:
    if cfg["imbalance_transition"] is not None:
        return _matrix("imbalance_transition", cfg["imbalance_transition"], L, "imbalance level")
    rho = _number("imbalance_persistence", cfg["imbalance_persistence"])
    if not 0 <= rho <= 1:
        raise _fail("imbalance_persistence", f"{rho:g} is outside [0, 1]")
    P = persistence_matrix(rho, L)
    if closed_classes(P) > 1:
        raise _fail(
            "imbalance_persistence",
            f"{rho:g} never moves the imbalance (no unique stationary law); it must be below 1 "
            "with more than one level",
        )
    return P


def _moves(cfg: Mapping[str, Any], iota: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(up, down) per level from move_table, or from p and theta."""
    if cfg["move_table"] is not None:
        table = cfg["move_table"]
        if isinstance(table, str) or not isinstance(table, Sequence) or len(table) != len(iota):
            raise _fail("move_table", f"it needs {len(iota)} [up, down] pairs, one per level")
        pairs = np.array([_vector("move_table", pair, 2, "of up and down") for pair in table])
        for level, (u, d) in zip(iota, pairs, strict=True):
            if u < 0 or d < 0 or u + d > 1:
                raise _fail(
                    "move_table",
                    f"level {level:g}: [{u:g}, {d:g}]; up, down >= 0 with up + down <= 1",
                )
        return pairs[:, 0], pairs[:, 1]
    p = _number("move_probability", cfg["move_probability"])
    if not 0 <= p <= 1:
        raise _fail("move_probability", f"{p:g} is outside [0, 1]")
    theta = _number("imbalance_signal", cfg["imbalance_signal"])
    if abs(theta) * np.abs(iota).max() > 1:
        raise _fail(
            "imbalance_signal",
            f"{theta:g} times the largest |level| {np.abs(iota).max():g} exceeds 1; "
            "|imbalance_signal| max|level| must be <= 1",
        )
    return p * (1 + theta * iota) / 2, p * (1 - theta * iota) / 2


def _fills(cfg: Mapping[str, Any], iota: FloatArray) -> FloatArray:
    """F(iota) per level from fill_table, or A (1 + phi iota)."""
    if cfg["fill_table"] is not None:
        F = _vector("fill_table", cfg["fill_table"], len(iota), "imbalance level")
        if (F < 0).any():
            raise _fail("fill_table", f"{F.tolist()}: rates must be >= 0")
        return F
    A = _at_least("fill_rate", cfg["fill_rate"])
    phi = _number("fill_imbalance", cfg["fill_imbalance"])
    factor = 1 + phi * iota
    if (factor < 0).any():
        level = float(iota[int(np.argmin(factor))])
        raise _fail(
            "fill_imbalance",
            f"{phi:g} makes 1 + fill_imbalance * level negative at level {level:g}; "
            "it must be >= 0 at every level",
        )
    return A * factor


def _menu(value: Any) -> tuple[Action, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not len(value):
        raise _fail("book_actions", f"{value!r}: the menu must be a non-empty list of actions")
    actions = tuple(parse_action(text) for text in value)
    for j, a in enumerate(actions):
        if a in actions[:j]:
            raise _fail("book_actions", f"{a} appears twice; actions must be distinct")
    return actions


def _simulation(total_shares: Any, time_horizon: Any, start_price: Any) -> tuple[float, int, float]:
    Q = _number("total_shares", total_shares, "simulation")
    if Q <= 0:
        raise _fail("total_shares", f"{Q:g}; it must be > 0", "simulation")
    N = _number(
        "time_horizon", DEFAULT_HORIZON if time_horizon is None else time_horizon, "simulation"
    )
    if N < 1 or int(N) != N:
        raise _fail("time_horizon", f"{N:g}; it must be an integer >= 1", "simulation")
    P0 = _number("start_price", start_price, "simulation")
    if P0 <= 0:
        raise _fail("start_price", f"{P0:g}; it must be > 0", "simulation")
    return Q, int(N), P0


def _resolve(
    section: dict[str, Any], total_shares: Any, time_horizon: Any, start_price: Any
) -> BookParams:
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise _fail(unknown[0], f"unknown setting; allowed: {', '.join(DEFAULTS)}")
    cfg = {**DEFAULTS, **section}
    Q, N, P0 = _simulation(total_shares, time_horizon, start_price)
    tick = _number("tick", cfg["tick"])
    if tick <= 0:
        raise _fail("tick", f"{tick:g}; it must be > 0")
    spreads = _spreads(cfg["spreads"])
    iota = _levels(cfg["imbalance_levels"])
    clip = _number("clip", cfg["clip"])
    if not 0 < clip <= Q:
        raise _fail("clip", f"{clip:g}; it must satisfy 0 < clip <= total_shares ({Q:g})")
    up, down = _moves(cfg, iota)
    p = BookParams(
        Q=Q,
        N=N,
        P0=P0,
        tick=tick,
        spreads=spreads,
        spread_transition=_matrix(
            "spread_transition", cfg["spread_transition"], len(spreads), "spread"
        ),
        levels=iota,
        imbalance_transition=_imbalance_transition(cfg, len(iota)),
        up=up,
        down=down,
        fill=_fills(cfg, iota),
        fill_decay=_at_least("fill_decay", cfg["fill_decay"]),
        clip=clip,
        impact=_at_least("book_impact", cfg["book_impact"]),
        permanent_impact=_at_least("book_permanent_impact", cfg["book_permanent_impact"]),
        risk_aversion=_at_least("book_risk_aversion", cfg["book_risk_aversion"]),
        actions=_menu(cfg["book_actions"]),
        max_depth=_at_least("max_depth", cfg["max_depth"]),
    )
    check_twap_price(p)
    return p


def twap_last_price(p: BookParams) -> float:
    """TWAP's lowest execution price on the path without mid moves, at the widest spread:
    P0 - max(s) tau / 2 - alpha_b Q (N - 1) / N - beta_b Q / N."""
    return float(
        p.P0
        - p.spreads.max() * p.tick / 2
        - p.permanent_impact * p.Q * (p.N - 1) / p.N
        - p.impact * p.Q / p.N
    )


def check_twap_price(p: BookParams) -> None:
    """The rule of "Which markets are refused" on this market."""
    price = twap_last_price(p)
    if price <= 0:
        raise _fail(
            "start_price",
            f"TWAP would sell at ${price:.6g} <= 0 on the path without mid moves (start_price "
            f"{p.P0:g} - max(book.spreads) {p.spreads.max():g} x book.tick {p.tick:g} / 2 - "
            f"book.book_permanent_impact {p.permanent_impact:g} x total_shares {p.Q:g} x "
            f"(N-1)/N - book.book_impact {p.impact:g} x total_shares / N, N = {p.N}); "
            "the price must stay above 0",
            "simulation",
        )
