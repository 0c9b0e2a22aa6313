"""The toolkit's self-check: closed forms next to Monte Carlo for every reference strategy."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_order_execution.analytics import (
    OptimalStrategy,
    efficient_frontier,
    exact_cost,
    optimal_cost,
    reference_strategies,
    schedule_moments,
    solve_lq,
    twap_schedule,
)
from rl_order_execution.evaluation import (
    Evaluation,
    evaluate,
    negligible,
    rollout,
    standard_error,
)
from rl_order_execution.market import FloatArray, MarketParams
from rl_order_execution.strategies import TWAP, Strategy

TOLERANCE_SE = 4.0


def executed_schedule(p: MarketParams, strategy: Strategy) -> FloatArray | None:
    """The trades a price-independent reference strategy executes (lot rounding included), or None
    when they depend on the price path (checked on three paths: shocks 0, +1 and -1 at every step;
    enough for the references, whose trades are linear in the price, not for arbitrary policies).
    Runs a copy, so the strategy's own counters (the optimum's clip share) stay untouched."""
    shocks = np.outer([0.0, 1.0, -1.0], np.ones(p.N))
    trades = rollout(p, copy.deepcopy(strategy), shocks).n
    same = np.allclose(trades, trades[0], rtol=0.0, atol=1e-9 * p.Q)
    return np.array(trades[0]) if same else None


def exact_values(
    p: MarketParams, name: str, strategy: Strategy | None = None
) -> dict[str, float | None]:
    """Closed-form E[IS], Std[IS], E[C] ($) where known; the adaptive optimum has E[C] only.

    With lots, the closed forms of the planned schedules no longer hold; a strategy whose trades
    do not depend on the price gets the exact moments of the schedule it actually executes.
    """
    if p.lot_size > 0:
        trades = None if strategy is None else executed_schedule(p, strategy)
        if trades is None:
            return {"is_mean_exact": None, "is_std_exact": None, "cost_mean_exact": None}
        m = schedule_moments(p, trades)
        return {"is_mean_exact": m.e_is, "is_std_exact": m.std_is, "cost_mean_exact": m.e_c}
    if name == "optimal" and not solve_lq(p).is_deterministic:
        return {"is_mean_exact": None, "is_std_exact": None, "cost_mean_exact": optimal_cost(p)}
    try:
        e = exact_cost(p, name)
    except ValueError:
        return {"is_mean_exact": None, "is_std_exact": None, "cost_mean_exact": None}
    return {"is_mean_exact": e.e_is, "is_std_exact": e.std_is, "cost_mean_exact": e.e_c}


def optimum_gap(p: MarketParams) -> float:
    """E[C_TWAP] - E[C_opt] in $: the most any strategy can save over TWAP.

    With lots, TWAP's cost is that of the lot-rounded trades it executes, and C_opt stays the
    continuous optimum: a lower bound on every lot-rounded strategy's cost, so the gap is an upper
    bound on what can be saved and the shares captured are conservative.
    """
    twap = twap_schedule(p) if p.lot_size == 0 else executed_schedule(p, TWAP())
    assert twap is not None  # TWAP never looks at the price
    return schedule_moments(p, twap).e_c - optimal_cost(p)


def frontier(p: MarketParams, points: int = 40) -> list[tuple[float, float, float]]:
    """Almgren-Chriss efficient frontier over risk aversions spanning TWAP to very urgent."""
    top = max(10.0 * p.lam, 1.0)
    lambdas = np.concatenate([[0.0], np.geomspace(top * 1e-5, top, points - 1)])
    return efficient_frontier(p, lambdas.tolist())


@dataclass
class Check:
    """One reference strategy: exact values, Monte Carlo estimates and their z-scores."""

    name: str
    values: dict[str, Any]
    ok: bool


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
    is_std = float(is_.std(ddof=1))
    strategy = next(s for s in evaluation.strategies if s.name == name)
    values: dict[str, Any] = {
        **exact_values(p, name, strategy),
        "is_mean": float(is_.mean()),
        "is_se": standard_error(is_),
        "is_std": is_std,
        "is_std_se": std_error_of_std(is_),
        "cost_mean": float(cost.mean()),
        "cost_se": standard_error(cost),
    }
    floor = negligible(p)
    values["z_is_mean"] = _z(values["is_mean"], values["is_mean_exact"], values["is_se"], floor)
    values["z_is_std"] = _z(is_std, values["is_std_exact"], values["is_std_se"], floor)
    values["z_cost_mean"] = _z(
        values["cost_mean"], values["cost_mean_exact"], values["cost_se"], floor
    )
    if isinstance(strategy, OptimalStrategy):
        values["clip_share"] = strategy.clip_share
        if strategy.clip_share > 0:  # clipping makes E[C] differ from the unconstrained optimum
            values["z_cost_mean"] = None
    zs = [
        abs(z) for key in ("z_is_mean", "z_is_std", "z_cost_mean") if (z := values[key]) is not None
    ]
    return Check(name, values, all(z <= TOLERANCE_SE for z in zs))


def run_checks(p: MarketParams, shocks: FloatArray) -> tuple[list[Check], Evaluation]:
    strategies: list[Strategy] = reference_strategies(p)
    evaluation = evaluate(p, strategies, shocks)
    return [check_strategy(p, s.name, evaluation) for s in strategies], evaluation
