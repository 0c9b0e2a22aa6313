"""Closed forms that a price model may or may not provide: schedule moments, the Almgren-Chriss
schedule, the linear-quadratic optimum and the best policy on the discrete action grid."""

from rl_order_execution.exact.discrete import DiscretePolicy, action_trades, best_discrete_policy
from rl_order_execution.exact.lq import LQSolution, optimal_cost, optimal_schedule, solve_lq
from rl_order_execution.exact.moments import (
    ScheduleMoments,
    check_schedule,
    efficient_frontier,
    price_moments,
    schedule_moments,
)
from rl_order_execution.exact.schedules import (
    POV_FRACTION,
    ac_kappa,
    almgren_chriss_schedule,
    effective_impact,
    inventory_path,
    linear_schedule,
    pov_schedule,
    step_impact,
    trades_from_inventory,
    twap_schedule,
    vwap_rate,
    vwap_schedule,
)
from rl_order_execution.market import MarketParams


def capture_share(p: MarketParams, cost: float) -> float:
    """(C_TWAP - C) / (C_TWAP - C_opt): the share of the possible improvement over TWAP."""
    c_twap = schedule_moments(p, twap_schedule(p)).e_c
    return (c_twap - cost) / (c_twap - optimal_cost(p))


__all__ = [
    "POV_FRACTION",
    "DiscretePolicy",
    "LQSolution",
    "ScheduleMoments",
    "ac_kappa",
    "action_trades",
    "almgren_chriss_schedule",
    "best_discrete_policy",
    "capture_share",
    "check_schedule",
    "effective_impact",
    "efficient_frontier",
    "inventory_path",
    "linear_schedule",
    "optimal_cost",
    "optimal_schedule",
    "pov_schedule",
    "price_moments",
    "schedule_moments",
    "solve_lq",
    "step_impact",
    "trades_from_inventory",
    "twap_schedule",
    "vwap_rate",
    "vwap_schedule",
]
