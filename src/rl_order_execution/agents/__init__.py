"""Agents behind one seam: the `Agent` protocol and `AgentSpec` (`base`), the kinds the toolkit
knows (`registry`), checkpoints of any kind (`checkpoint`), what all training shares (`training`,
`validation`, the learner's reward in `shaping`), and one package per kind of implementation
(`dqn`: "ddqn"; `sb3`: Stable-Baselines3's "ppo" and "sac")."""

from rl_order_execution.agents.base import Agent, AgentSpec, resolve_device

__all__ = ["Agent", "AgentSpec", "resolve_device"]
