"""Strategies on the book market, all over the batched state: TWAP, passive, the exact optima
(menu and continuous) and any table or observation policy. One protocol: (params, state) ->
orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rl_order_execution.market.book.dynamics import (
    BookState,
    Menu,
    Orders,
    continuous_orders,
    features,
    grid_index,
    limit_orders,
    market_orders,
    menu_orders,
)
from rl_order_execution.market.book.optimum import BookSolution, solve_continuous, solve_menu
from rl_order_execution.market.book.params import BookParams, FloatArray, IntArray

Observations = np.ndarray[Any, np.dtype[np.float32]]


class BookPolicy(Protocol):
    """A strategy: a name and the orders of B episodes in their current state."""

    @property
    def name(self) -> str: ...

    def __call__(self, p: BookParams, s: BookState) -> Orders: ...


@dataclass(frozen=True)
class Twap:
    """Market orders of q_k / (N - k) shares (any real n)."""

    name: str = "twap"

    def __call__(self, p: BookParams, s: BookState) -> Orders:
        return market_orders(s.q / np.maximum(p.N - s.k, 1))


@dataclass(frozen=True)
class Passive:
    """`limit depth` every step (the rest is sold at the last step)."""

    name: str = "passive"
    depth: float = 0.0

    def __call__(self, p: BookParams, s: BookState) -> Orders:
        return limit_orders(len(s), self.depth)


def _cell(p: BookParams, s: BookState) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(k, g, s, i) indices of every episode into an (N, G, S, L) table."""
    return np.minimum(s.k, p.N - 1), grid_index(p, s.q), s.spread, s.imbalance


@dataclass(frozen=True)
class MenuTable:
    """A menu policy tabulated on (k, g, s, i): table (N, G, S, L) of menu indices (or any shape
    that broadcasts to it, such as (N, G, S, 1) for a policy blind to the imbalance)."""

    name: str
    table: IntArray
    _menu: Menu | None = field(default=None, repr=False, compare=False)

    def __call__(self, p: BookParams, s: BookState) -> Orders:
        full = np.broadcast_to(self.table, (p.N, p.G, len(p.spreads), len(p.levels)))
        return menu_orders(p, full[_cell(p, s)], self._menu)


@dataclass(frozen=True)
class ContinuousTable:
    """SAC's continuous action tabulated on (k, g, s, i): a < 0 market ceil(-a), else limit a."""

    name: str
    table: FloatArray

    def __call__(self, p: BookParams, s: BookState) -> Orders:
        full = np.broadcast_to(self.table, (p.N, p.G, len(p.spreads), len(p.levels)))
        return continuous_orders(p, full[_cell(p, s)])


@dataclass(frozen=True)
class ObservationPolicy:
    """A policy of the six features (a trained agent): act(obs (B, 6) float32) -> menu indices
    (B,), or continuous actions (B,) or (B, 1) when `continuous`."""

    name: str
    act: Callable[[Observations], Any]
    continuous: bool = False

    def __call__(self, p: BookParams, s: BookState) -> Orders:
        actions = self.act(features(p, s))
        if self.continuous:
            return continuous_orders(p, actions)
        return menu_orders(p, actions)


def menu_optimum(p: BookParams, solution: BookSolution | None = None) -> MenuTable:
    """The exact optimum over the menu as a policy."""
    sol = solution or solve_menu(p)
    return MenuTable("optimal", np.asarray(sol.policy, dtype=np.int64), Menu.of(p))


def continuous_optimum(p: BookParams, solution: BookSolution | None = None) -> ContinuousTable:
    """The exact optimum over SAC's continuous actions as a policy."""
    sol = solution or solve_continuous(p)
    return ContinuousTable("optimal_continuous", np.asarray(sol.policy, dtype=np.float64))


def reference_policies(p: BookParams) -> list[BookPolicy]:
    """TWAP, passive, and the two exact optima (menu, continuous)."""
    return [Twap(), Passive(), menu_optimum(p), continuous_optimum(p)]
