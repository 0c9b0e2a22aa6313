"""rl-order-execution: optimal trade execution with deep reinforcement learning."""

from rl_order_execution.market import register_envs

__version__ = "0.1.0"

register_envs()
