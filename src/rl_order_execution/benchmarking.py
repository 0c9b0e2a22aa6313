"""The toolkit's self-check: closed forms next to Monte Carlo for every reference strategy."""

from __future__ import annotations

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
from rl_order_execution.evaluation import Evaluation, evaluate, standard_error
from rl_order_execution.market import FloatArray, MarketParams
from rl_order_execution.strategies import Strategy

TOLERANCE_SE = 4.0


def exact_values(p: MarketParams, name: str) -> dict[str, float | None]:
    """Closed-form E[IS], Std[IS], E[C] ($) where known; the adaptive optimum has E[C] only."""
    if name == "optimal" and not solve_lq(p).is_deterministic:
        return {"is_mean_exact": None, "is_std_exact": None, "cost_mean_exact": optimal_cost(p)}
    try:
        e = exact_cost(p, name)
    except ValueError:
        return {"is_mean_exact": None, "is_std_exact": None, "cost_mean_exact": None}
    return {"is_mean_exact": e.e_is, "is_std_exact": e.std_is, "cost_mean_exact": e.e_c}


def optimum_gap(p: MarketParams) -> float:
    """E[C_TWAP] - E[C_opt] in $: the most any strategy can save over TWAP."""
    return schedule_moments(p, twap_schedule(p)).e_c - optimal_cost(p)


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


def _z(estimate: float, exact: float | None, se: float) -> float | None:
    if exact is None:
        return None
    return (
        (estimate - exact) / se if se > 0 else (0.0 if math.isclose(estimate, exact) else math.inf)
    )


def check_strategy(p: MarketParams, name: str, evaluation: Evaluation) -> Check:
    tr = evaluation.trajectories[name]
    is_, cost = tr.shortfall(p), tr.cost(p)
    n = len(is_)
    is_std = float(is_.std(ddof=1))
    values: dict[str, Any] = {
        **exact_values(p, name),
        "is_mean": float(is_.mean()),
        "is_se": standard_error(is_),
        "is_std": is_std,
        "is_std_se": is_std / math.sqrt(2 * (n - 1)),  # normal approximation
        "cost_mean": float(cost.mean()),
        "cost_se": standard_error(cost),
    }
    values["z_is_mean"] = _z(values["is_mean"], values["is_mean_exact"], values["is_se"])
    values["z_is_std"] = _z(is_std, values["is_std_exact"], values["is_std_se"])
    values["z_cost_mean"] = _z(values["cost_mean"], values["cost_mean_exact"], values["cost_se"])
    strategy = next(s for s in evaluation.strategies if s.name == name)
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
