"""A trained agent as a strategy: its deterministic policy on the model's observation (the
agents' side of the strategy protocol: strategies know nothing of agents)."""

from __future__ import annotations

from rl_order_execution.agents.base import Agent
from rl_order_execution.market import FloatArray, MarketParams, MarketState, base_rate, observe


class GreedyAgent:
    """Any agent kind acting deterministically: its speed (a multiple of the base rate) for
    every episode, in one batched call."""

    def __init__(self, agent: Agent, name: str = "agent") -> None:
        self.name = name
        self.agent = agent

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.agent.speeds(observe(p, s)) * base_rate(p, s)
        return out
