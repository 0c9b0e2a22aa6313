"""The Double DQN (kind "ddqn"): network, replay, optimiser, agent, training loop, search space."""

from rl_order_execution.agents.base import AgentSpec
from rl_order_execution.agents.dqn.agent import (
    DQNAgent,
    double_dqn_target,
    epsilon_at,
    linear_decay,
    vanilla_dqn_target,
)
from rl_order_execution.agents.dqn.network import QNetwork, UnaffectedPrice, build_network
from rl_order_execution.agents.dqn.optim import Adam
from rl_order_execution.agents.dqn.replay import Batch, NStepReturns, ReplayBuffer
from rl_order_execution.agents.dqn.search import suggest
from rl_order_execution.agents.dqn.training import train

SPEC = AgentSpec(
    kind=DQNAgent.kind,
    train=train,
    load=DQNAgent.restore,
    suggest=suggest,
    continuous=False,
    resumable=True,
)

__all__ = [
    "SPEC",
    "Adam",
    "Batch",
    "DQNAgent",
    "NStepReturns",
    "QNetwork",
    "ReplayBuffer",
    "UnaffectedPrice",
    "build_network",
    "double_dqn_target",
    "epsilon_at",
    "linear_decay",
    "suggest",
    "train",
    "vanilla_dqn_target",
]
