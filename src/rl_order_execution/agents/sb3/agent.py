"""A trained Stable-Baselines3 policy behind our `Agent` seam: its deterministic (mean) action as
a speed for a whole batch of observations, and its tensors for our checkpoint (never SB3's zip,
whose cloudpickled objects would run code on load)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import BasePolicy

from rl_order_execution.agents.features import learner_obs, learner_obs_space
from rl_order_execution.agents.sb3.env import BOX, SpeedMap
from rl_order_execution.config import Settings
from rl_order_execution.market import FloatArray, MarketParams


class SB3Agent:
    """An SB3 policy acting deterministically: PPO's mean action, SAC's tanh of its mean, as a
    speed by the algorithm's `SpeedMap`."""

    def __init__(
        self, kind: str, policy: BasePolicy, p: MarketParams, speed_map: SpeedMap = BOX
    ) -> None:
        self.kind = kind
        self.policy = policy
        self.params = p
        self.speed_map = speed_map

    def speeds(self, obs: np.ndarray) -> FloatArray:
        """The mean action for each row of obs (B, obs_dim), as a speed in [0, max_multiplier]."""
        actions, _ = self.policy.predict(learner_obs(self.params, obs), deterministic=True)
        return self.speed_map.speeds(self.params, np.asarray(actions), obs)

    def policy_state(self) -> dict[str, Any]:
        """Every tensor of the policy (actor and critics), on the CPU."""
        state = self.policy.state_dict()
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_policy_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state)


def _no_learning(_progress: float) -> float:
    return 0.0


def restored(
    kind: str,
    policy_class: type[BasePolicy],
    kwargs: dict[str, Any],
    settings: Settings,
    state: dict[str, Any],
    device: torch.device,
    speed_map: SpeedMap = BOX,
) -> SB3Agent:
    """A policy of `policy_class` built from the settings' description, with the saved tensors,
    on the market the settings describe (replayed bars included), acting by `speed_map`."""
    from rl_order_execution.agents.sb3.env import ACTION_SPACE
    from rl_order_execution.market import ContinuousExecutionEnv

    env = ContinuousExecutionEnv(MarketParams.from_settings(settings.simulation, settings.replay))
    space = learner_obs_space(env.params, env.observation_space)
    policy = policy_class(space, ACTION_SPACE, _no_learning, **kwargs).to(device)
    agent = SB3Agent(kind, policy, env.params, speed_map)
    agent.load_policy_state(state)
    policy.set_training_mode(False)
    return agent
