"""The toolkit's self-check: closed forms next to Monte Carlo for every reference strategy."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rl_order_execution.evaluation.rollout import Evaluation, evaluate, rollout
from rl_order_execution.evaluation.statistics import (
    OPTIONAL,
    ExactValues,
    json_fields,
    negligible,
    standard_error,
)
from rl_order_execution.exact import (
    efficient_frontier,
    optimal_cost,
    schedule_moments,
    solve_lq,
    twap_schedule,
)
from rl_order_execution.market import FloatArray, MarketParams, Shocks
from rl_order_execution.strategies import (
    TWAP,
    OptimalStrategy,
    Strategy,
    exact_cost,
    reference_strategies,
)

TOLERANCE_SE = 4.0


def executed_schedule(p: MarketParams, strategy: Strategy) -> FloatArray | None:
    """The trades a price-independent reference strategy executes (lot rounding included), or None
    when they depend on the price path (checked on three paths: shocks 0, +1 and -1 at every step;
    enough for the references, whose trades are linear in the price, not for arbitrary policies).
    Runs a copy, so the strategy's own counters (the optimum's clip share) stay untouched."""
    z = np.outer([0.0, 1.0, -1.0], np.ones(p.N))
    trades = rollout(p, copy.deepcopy(strategy), Shocks(z, np.zeros_like(z))).n
    same = np.allclose(trades, trades[0], rtol=0.0, atol=1e-9 * p.Q)
    return np.array(trades[0]) if same else None


def exact_values(p: MarketParams, name: str, strategy: Strategy | None = None) -> ExactValues:
    """Closed-form E[IS], Std[IS], E[C] ($) where known; the adaptive optimum has E[C] only.

    With lots, the closed forms of the planned schedules no longer hold; a strategy whose trades
    do not depend on the price gets the exact moments of the schedule it actually executes.
    """
    if p.lot_size > 0:
        trades = None if strategy is None else executed_schedule(p, strategy)
        if trades is None:
            return ExactValues()
        m = schedule_moments(p, trades)
        return ExactValues(m.e_is, m.std_is, m.e_c)
    if name == "optimal" and not (solution := solve_lq(p)).is_deterministic:
        # an adaptive optimum has a closed-form E[C] only where the recursion is exact
        return ExactValues(cost_mean_exact=solution.expected_cost if solution.exact else None)
    try:
        e = exact_cost(p, name)
    except ValueError:
        return ExactValues()
    return ExactValues(e.e_is, e.std_is, e.e_c)


def optimum_gap(p: MarketParams) -> float:
    """E[C_TWAP] - E[C_opt] in $: the most any strategy can save over TWAP.

    With lots, TWAP's cost is that of the lot-rounded trades it executes, and C_opt stays the
    continuous optimum: a lower bound on every lot-rounded strategy's cost, so the gap is an upper
    bound on what can be saved and the shares captured are conservative.
    """
    twap = twap_schedule(p) if p.lot_size == 0 else executed_schedule(p, TWAP())
    assert twap is not None  # TWAP never looks at the price
    return schedule_moments(p, twap).e_c - optimal_cost(p)


@dataclass(frozen=True)
class FrontierPoint:
    """One point of the Almgren-Chriss efficient frontier: E[IS] and Std[IS] in $."""

    risk_aversion: float
    is_mean: float
    is_std: float

    def to_json(self) -> dict[str, float]:
        return json_fields(self)


FRONTIER_POINTS = 120
FRONTIER_SEARCH = 400  # risk aversions tried to place the points


def frontier(p: MarketParams, points: int = FRONTIER_POINTS) -> list[FrontierPoint]:
    """Almgren-Chriss efficient frontier over risk aversions spanning TWAP (0) to very urgent,
    its points evenly spaced along the curve (arc length, each axis in units of its range), so a
    line through them is a smooth curve: equally spaced risk aversions would crowd most points
    next to TWAP and leave the urgent end a few long segments."""
    top = max(10.0 * p.lam, 1.0)
    search = np.concatenate([[0.0], np.geomspace(top * 1e-5, top, FRONTIER_SEARCH - 1)])
    dense = efficient_frontier(p, search.tolist())
    if not dense:
        return []
    _, mean, std = (np.array(column) for column in zip(*dense, strict=True))
    span_mean, span_std = float(np.ptp(mean)), float(np.ptp(std))
    steps = np.hypot(
        np.diff(mean) / (span_mean or 1.0), np.diff(std) / (span_std or 1.0)
    )  # all 0 where every risk aversion gives one schedule (sigma = 0)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] > 0:
        lambdas = np.interp(np.linspace(0.0, along[-1], points), along, search)
    else:
        lambdas = np.concatenate([[0.0], np.geomspace(top * 1e-5, top, points - 1)])
    return [FrontierPoint(*point) for point in efficient_frontier(p, lambdas.tolist())]


@dataclass(frozen=True)
class Check:
    """One reference strategy: exact values, Monte Carlo estimates ($) and their z-scores."""

    name: str
    exact: ExactValues
    is_mean: float
    is_se: float
    is_std: float
    is_std_se: float
    cost_mean: float
    cost_se: float
    z_is_mean: float | None  # None where no closed form is known
    z_is_std: float | None
    z_cost_mean: float | None
    clip_share: float | None = field(
        default=None, metadata=OPTIONAL
    )  # the exact optimum only: share of decisions clipped

    @property
    def z_scores(self) -> list[float]:
        """|z| of the estimates that have a closed form to compare with."""
        zs = (self.z_is_mean, self.z_is_std, self.z_cost_mean)
        return [abs(z) for z in zs if z is not None]

    @property
    def ok(self) -> bool:
        """Monte Carlo agrees with every closed form within TOLERANCE_SE standard errors."""
        return all(z <= TOLERANCE_SE for z in self.z_scores)

    def to_json(self) -> dict[str, Any]:
        """benchmark.json's entry (the name is its key): exact values, estimates, ok."""
        estimates = {k: v for k, v in json_fields(self).items() if k not in ("name", "exact")}
        return {**self.exact.to_json(), **estimates, "ok": self.ok}


def std_error_of_std(x: FloatArray) -> float:
    """SE of the sample standard deviation from the sample fourth moment (delta method):
    Var(s^2) = (m4 - s^4 (n - 3) / (n - 1)) / n and SE(s) = SE(s^2) / (2 s). Unlike the normal
    s / sqrt(2 (n - 1)), it stays honest for the heavy tails of a very volatile GBM."""
    n, s = len(x), float(x.std(ddof=1))
    if s == 0:
        return 0.0
    m4 = float(np.mean((x - x.mean()) ** 4))
    var_s2 = max(m4 - s**4 * (n - 3) / (n - 1), 0.0) / n
    return math.sqrt(var_s2) / (2 * s)


def _z(estimate: float, exact: float | None, se: float, floor: float) -> float | None:
    """(estimate - exact) / SE, the SE floored at float rounding (sigma = 0 has SE ~ 1e-14)."""
    if exact is None:
        return None
    return (estimate - exact) / max(se, floor)


def check_strategy(p: MarketParams, name: str, evaluation: Evaluation) -> Check:
    is_, cost = evaluation.outcomes[name].shortfall, evaluation.outcomes[name].cost
    strategy = next(s for s in evaluation.strategies if s.name == name)
    exact = exact_values(p, name, strategy)
    is_mean, is_se = float(is_.mean()), standard_error(is_)
    is_std, is_std_se = float(is_.std(ddof=1)), std_error_of_std(is_)
    cost_mean, cost_se = float(cost.mean()), standard_error(cost)
    floor = negligible(p)
    z_cost_mean = _z(cost_mean, exact.cost_mean_exact, cost_se, floor)
    clip_share = None
    if isinstance(strategy, OptimalStrategy):
        clip_share = strategy.clip_share
        if clip_share > 0:  # clipping makes E[C] differ from the unconstrained optimum
            z_cost_mean = None
    return Check(
        name=name,
        exact=exact,
        is_mean=is_mean,
        is_se=is_se,
        is_std=is_std,
        is_std_se=is_std_se,
        cost_mean=cost_mean,
        cost_se=cost_se,
        z_is_mean=_z(is_mean, exact.is_mean_exact, is_se, floor),
        z_is_std=_z(is_std, exact.is_std_exact, is_std_se, floor),
        z_cost_mean=z_cost_mean,
        clip_share=clip_share,
    )


def run_checks(p: MarketParams, shocks: Shocks) -> tuple[list[Check], Evaluation]:
    strategies: list[Strategy] = reference_strategies(p)
    evaluation = evaluate(p, strategies, shocks)
    return [check_strategy(p, s.name, evaluation) for s in strategies], evaluation
