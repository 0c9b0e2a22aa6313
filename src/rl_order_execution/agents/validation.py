"""Greedy validation on fixed shocks of the run's own seed (never the test set)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rl_order_execution.agents.base import Agent
from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.agents.training import TrainingSeeds
from rl_order_execution.config import Settings
from rl_order_execution.evaluation import rollout
from rl_order_execution.market import MarketParams, Shocks, shock_matrix
from rl_order_execution.strategies import TWAP, Strategy


@dataclass
class Validator:
    """Greedy cost of the agent on fixed validation shocks, as savings vs TWAP in bps."""

    params: MarketParams
    shocks: Shocks
    twap_cost: float = field(init=False)

    def __post_init__(self) -> None:
        self.twap_cost = self.cost(TWAP())

    @classmethod
    def from_settings(cls, settings: Settings, p: MarketParams) -> Validator:
        """A run's validation set on market p: 2 x validation_episodes antithetic episodes from
        its seed; on replayed bars, the validation sessions' windows (never a test session)."""
        if p.replay is not None:
            return cls(p, p.replay.validation.shocks())
        stream = TrainingSeeds.from_master(settings.simulation.seed).validation
        return cls(p, shock_matrix(p, stream, 2 * settings.rl.validation_episodes, True))

    def cost(self, strategy: Strategy) -> float:
        """Mean risk-adjusted cost ($) of a strategy on the validation shocks."""
        return float(rollout(self.params, strategy, self.shocks).cost(self.params).mean())

    def savings_bps(self, agent: Agent) -> float:
        return (self.twap_cost - self.cost(GreedyAgent(agent))) * self.params.bps
