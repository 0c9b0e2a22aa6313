"""The reference strategies, defined once: what each is, its fixed schedule where it has one,
whether a run reports it, and on which markets it exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from rl_order_execution.exact import (
    POV_FRACTION,
    almgren_chriss_schedule,
    best_discrete_policy,
    linear_schedule,
    optimal_schedule,
    pov_schedule,
    schedule_moments,
    trades_from_inventory,
    twap_schedule,
    vwap_schedule,
)
from rl_order_execution.market import FloatArray, MarketParams
from rl_order_execution.strategies.base import TWAP, Strategy
from rl_order_execution.strategies.discrete import BestDiscreteStrategy
from rl_order_execution.strategies.optimal import OptimalStrategy
from rl_order_execution.strategies.schedules import POV, VWAP, ScheduleStrategy


def _always(p: MarketParams) -> bool:
    return True


def _martingale(p: MarketParams) -> bool:
    return p.prices.is_martingale(p)


def _volume_profile(p: MarketParams) -> bool:
    """VWAP is TWAP on a flat profile: reported only where the volume varies."""
    return not p.is_flat


def _ac_trades(p: MarketParams) -> FloatArray:
    return trades_from_inventory(almgren_chriss_schedule(p))


def _on_schedule(
    name: str, trades: Callable[[MarketParams], FloatArray]
) -> Callable[..., Strategy]:
    def build(p: MarketParams) -> Strategy:
        return ScheduleStrategy(name, trades(p))

    return build


@dataclass(frozen=True)
class Reference:
    """A named reference strategy. `schedule` gives its fixed trades where it has them (it may
    raise ValueError, e.g. the optimum where it depends on the price)."""

    name: str
    build: Callable[[MarketParams], Strategy]
    schedule: Callable[[MarketParams], FloatArray]
    in_runs: bool
    applies: Callable[[MarketParams], bool] = _always


def _front(p: MarketParams) -> FloatArray:
    return linear_schedule(p, front=True)


def _back(p: MarketParams) -> FloatArray:
    return linear_schedule(p, front=False)


def _pov(p: MarketParams) -> FloatArray:
    return pov_schedule(p, POV_FRACTION)


def _best_discrete(p: MarketParams) -> FloatArray:
    return best_discrete_policy(p).trades


REFERENCES: tuple[Reference, ...] = (
    Reference("twap", lambda p: TWAP(), twap_schedule, in_runs=True),
    Reference("vwap", lambda p: VWAP(), vwap_schedule, True, _volume_profile),
    Reference("almgren-chriss", _on_schedule("almgren-chriss", _ac_trades), _ac_trades, True),
    Reference("optimal", lambda p: OptimalStrategy(), optimal_schedule, in_runs=True),
    Reference("best-discrete", BestDiscreteStrategy, _best_discrete, True, _martingale),
    Reference("pov", lambda p: POV(POV_FRACTION), _pov, in_runs=False),
    Reference("front-loaded", _on_schedule("front-loaded", _front), _front, in_runs=False),
    Reference("back-loaded", _on_schedule("back-loaded", _back), _back, in_runs=False),
)
BY_NAME = {r.name: r for r in REFERENCES}


def reference_strategies(p: MarketParams, runs_only: bool = False) -> list[Strategy]:
    """The references that exist on this market: all (the self-check) or a run's set."""
    return [r.build(p) for r in REFERENCES if r.applies(p) and (r.in_runs or not runs_only)]


def reference_schedule(p: MarketParams, name: str) -> FloatArray:
    """Trades of a deterministic reference strategy (optimal only where it is deterministic)."""
    if name not in BY_NAME:
        raise ValueError(f"no deterministic schedule named {name!r}")
    return BY_NAME[name].schedule(p)


class ExactCost(NamedTuple):
    """Exact E[IS], Std[IS] (None where no closed form exists) and E[C] ($) of a reference."""

    name: str
    e_is: float
    std_is: float | None
    e_c: float


def exact_cost(p: MarketParams, name: str) -> ExactCost:
    """Exact E[IS], Std[IS], E[C] ($) of a deterministic reference strategy."""
    m = schedule_moments(p, reference_schedule(p, name))
    return ExactCost(name, m.e_is, m.std_is, m.e_c)
