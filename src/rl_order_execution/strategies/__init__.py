"""Execution strategies behind one protocol: TWAP and fixed schedules, the exact optimum, the
best policy on the action grid, and the registry of references."""

from rl_order_execution.strategies.base import TWAP, Strategy
from rl_order_execution.strategies.discrete import BestDiscreteStrategy
from rl_order_execution.strategies.optimal import OptimalStrategy, SnappedOptimalStrategy
from rl_order_execution.strategies.registry import (
    REFERENCES,
    ExactCost,
    Reference,
    exact_cost,
    reference_schedule,
    reference_strategies,
)
from rl_order_execution.strategies.replay import CALIBRATED, HINDSIGHT, replay_references
from rl_order_execution.strategies.schedules import POV, VWAP, ScheduleStrategy, WindowSchedule

__all__ = [
    "CALIBRATED",
    "HINDSIGHT",
    "POV",
    "REFERENCES",
    "TWAP",
    "VWAP",
    "BestDiscreteStrategy",
    "ExactCost",
    "OptimalStrategy",
    "Reference",
    "ScheduleStrategy",
    "SnappedOptimalStrategy",
    "Strategy",
    "WindowSchedule",
    "exact_cost",
    "reference_schedule",
    "reference_strategies",
    "replay_references",
]
