"""A trained agent as a strategy: its deterministic policy on the model's observation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rl_order_execution.market import FloatArray, MarketParams, MarketState, base_rate, observe

if TYPE_CHECKING:
    from rl_order_execution.agents import Agent


class GreedyAgent:
    """Any agent kind acting deterministically: its speed (a multiple of the base rate) for
    every episode, in one batched call."""

    def __init__(self, agent: Agent, name: str = "agent") -> None:
        self.name = name
        self.agent = agent

    def __call__(self, p: MarketParams, s: MarketState) -> FloatArray:
        out: FloatArray = self.agent.speeds(observe(p, s)) * base_rate(p, s)
        return out
