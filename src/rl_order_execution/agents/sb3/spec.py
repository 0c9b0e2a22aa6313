"""One Stable-Baselines3 algorithm as the toolkit knows it: its own parts (the builder, the policy
and its shape, the search space, a reward unit) and the AgentSpec that trains and restores every
such algorithm the same way. As SB3's algorithms declare only what sets them apart over
`BaseAlgorithm`, `ppo.py` and `sac.py` declare only theirs here.

SB3 is imported inside the methods: a Double-DQN run never pays its import (torch.optim).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from rl_order_execution.agents.base import AgentSpec, SuggestFn
from rl_order_execution.agents.training import NO_HOOKS, TrainHooks
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from rl_order_execution.agents.sb3.agent import SB3Agent
    from rl_order_execution.agents.sb3.env import LearnerReward, MarketVecEnv, SpeedMap
    from rl_order_execution.agents.training import TrainResult

# (settings, the learner's env, seed, device) -> the SB3 algorithm, untrained
BuildFn = Callable[[Settings, "LearnerReward", int, torch.device], "BaseAlgorithm"]


@dataclass(frozen=True)
class SB3Algorithm:
    """One SB3 algorithm: what sets it apart, and the training and restore they all share."""

    kind: str  # the registry's name; also its settings section's (rl.ppo, rl.sac)
    build: BuildFn
    policy: str  # "module:Class" of its policy, imported on restore (as Gymnasium's entry points)
    policy_kwargs: Callable[[Any], dict[str, Any]]  # its settings section -> the policy's shape
    suggest: SuggestFn  # its Optuna search space
    # (market, its speed map) -> the factor its learner's reward is multiplied by
    reward_unit: Callable[[MarketParams, SpeedMap], float] | None = None
    # its settings section -> how its actions become speeds (None: [0, max_multiplier])
    speed_map: Callable[[Any], SpeedMap] | None = None

    def section(self, settings: Settings) -> Any:
        """Its own settings section (settings.rl.ppo, settings.rl.sac)."""
        return getattr(settings.rl, self.kind)

    def speeds(self, settings: Settings) -> SpeedMap:
        """How its actions become speeds under these settings."""
        from rl_order_execution.agents.sb3.env import BOX

        return BOX if self.speed_map is None else self.speed_map(self.section(settings))

    def learner_env(self, settings: Settings, market: MarketVecEnv) -> LearnerReward:
        """What it learns from: the market's learner reward, in its reward unit."""
        from rl_order_execution.agents.sb3.env import LearnerReward

        unit = 1.0
        if self.reward_unit is not None:
            unit = self.reward_unit(market.params, market.speed_map)
        return LearnerReward(market, settings.rl, unit)

    def train(
        self, settings: Settings, market: MarketParams, hooks: TrainHooks = NO_HOOKS
    ) -> TrainResult:
        """Train on `market` with settings.rl (budget, shaping) and its own section."""
        from rl_order_execution.agents.sb3.training import train_sb3

        return train_sb3(self, settings, market, hooks)

    def restore(self, settings: Settings, state: dict[str, Any], device: torch.device) -> SB3Agent:
        """The policy of a checkpoint: the settings it was trained with and its tensors."""
        from rl_order_execution.agents.sb3.agent import restored

        module, name = self.policy.split(":")
        policy_class = getattr(importlib.import_module(module), name)
        kwargs = self.policy_kwargs(self.section(settings))
        speeds = self.speeds(settings)
        return restored(self.kind, policy_class, kwargs, settings, state, device, speeds)

    def spec(self) -> AgentSpec:
        return AgentSpec(
            kind=self.kind,
            train=self.train,
            load=self.restore,
            suggest=self.suggest,
            continuous=True,
            resumable=True,  # train_sb3 saves and continues at every rollout's start
        )
