"""Our batched market as Stable-Baselines3 sees it: a `VecEnv` stepping every episode in one numpy
call, and the learner-side reward as a wrapper over it.

SB3's policies act in [-1, 1] (SAC squashes into it, PPO clips to it); a `SpeedMap` maps that onto
the market's continuous speed, for training and evaluation alike: PPO's onto [0, max_multiplier]
(`speed_from_action`), SAC's onto [0, a multiple of the static schedule's speed].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
    VecEnvWrapper,
)

from rl_order_execution.agents.features import (
    learner_obs,
    learner_obs_space,
    static_share_table,
    static_speed,
)
from rl_order_execution.agents.shaping import learner_reward
from rl_order_execution.agents.training import EpisodeReturns
from rl_order_execution.config import RLSettings
from rl_order_execution.market import FloatArray, MarketParams, VecContinuousExecutionEnv

ACTION_SPACE = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


def _width(space: spaces.Space[Any]) -> int:
    assert space.shape is not None
    return int(space.shape[0])


def speed_from_action(p: MarketParams, actions: np.ndarray) -> FloatArray:
    """An SB3 action in [-1, 1] (clipped into it) as a speed in [0, max_multiplier], shape (B,)."""
    a = np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions)), -1.0, 1.0)
    out: FloatArray = (a + 1.0) * (0.5 * p.max_multiplier)
    return out


def base_rate_action(p: MarketParams) -> float:
    """The SB3 action whose speed is 1: the base rate, TWAP's pace."""
    return 2.0 / p.max_multiplier - 1.0


@dataclass(frozen=True)
class SpeedMap:
    """How an SB3 action in [-1, 1] (clipped into it) becomes a speed: linearly, from 0 at -1 to
    the top at 1. The top is the market's max_multiplier (`relative` None: PPO's), or `relative`
    times the static schedule's speed in the observed state (`agents.features`; TWAP's pace on a
    flat profile), at most max_multiplier (SAC's)."""

    relative: float | None = None

    def speeds(self, p: MarketParams, actions: np.ndarray, obs: np.ndarray) -> FloatArray:
        """Speeds (B,) for actions (B, 1) answering observations obs (B, obs_dim, the env's or the
        learner's)."""
        if self.relative is None:
            return speed_from_action(p, actions)
        a = np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions)), -1.0, 1.0)
        top = self.relative * static_speed(p, obs)
        out: FloatArray = np.minimum((a + 1.0) * 0.5 * top, p.max_multiplier)
        return out

    def start_action(self, p: MarketParams) -> float:
        """The action at the reference pace: the base rate (box), the static speed (relative)."""
        return base_rate_action(p) if self.relative is None else 2.0 / self.relative - 1.0

    def speed_per_action(self, p: MarketParams) -> float:
        """Base rates per action unit at the start of an episode (k = 0, q = Q)."""
        if self.relative is None:
            return 0.5 * p.max_multiplier
        return 0.5 * self.relative * float(static_share_table(p)[p.N]) * p.N


BOX = SpeedMap()  # PPO's: [-1, 1] onto [0, max_multiplier]


class MarketVecEnv(VecEnv):
    """B continuous-action episodes in lockstep, behind SB3's VecEnv interface.

    Rewards are the env's (bps); observations are the learner's (`agents.features`: the env's,
    with the static speed appended under a volume profile). A finished episode restarts in the
    same step; its last observation is in infos[i]["terminal_observation"] (SB3's convention)
    and, for the whole batch at once, in `next_obs` (the true successor of every row, final
    rows included). `obs` holds the observations the next actions answer, which SAC's speed map
    reads.
    """

    def __init__(
        self, p: MarketParams, num_envs: int, seed: int, speed_map: SpeedMap = BOX
    ) -> None:
        self.market = VecContinuousExecutionEnv(num_envs, p)
        self.params = p
        self.speed_map = speed_map
        space = learner_obs_space(p, self.market.single_observation_space)
        # its own copy: SB3 seeds the action space and SAC draws from it before learning starts
        super().__init__(num_envs, space, copy.deepcopy(ACTION_SPACE))
        self._seed: int | None = seed  # used by the first reset only: one stream per training
        self._actions = np.zeros((num_envs, 1), dtype=np.float32)
        self.next_obs = np.zeros((num_envs, _width(self.observation_space)), dtype=np.float32)
        self.obs = np.zeros_like(self.next_obs)
        self.stats = EpisodeReturns(num_envs)  # the env's returns, for the charts
        self.finished = 0  # episodes the last step finished

    def reset(self) -> VecEnvObs:
        obs, _ = self.market.reset(seed=self._seed)
        self._seed = None
        self.stats.reset()
        self.obs = learner_obs(self.params, obs)
        return self.obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        speeds = self.speed_map.speeds(self.params, self._actions, self.obs)
        obs, reward, terminated, _, info = self.market.step(speeds)
        obs = learner_obs(self.params, obs)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self.next_obs = self.obs = obs
        self.finished = self.stats.step(reward, terminated)
        if self.finished:
            final = learner_obs(self.params, info["final_obs"])
            self.next_obs = np.where(terminated[:, None], final, obs)
            for i in np.flatnonzero(terminated):  # SB3 reads each finished episode's info
                infos[i]["terminal_observation"] = final[i]
        return obs, reward.astype(np.float32), terminated.copy(), infos

    @property
    def episodes(self) -> int:
        return self.stats.episodes

    @property
    def mean_return(self) -> float:
        """Mean env return (bps) of the last 100 finished episodes."""
        return self.stats.mean_return

    def state_dict(self) -> dict[str, Any]:
        """The live episodes (market state and generator) and their returns, for a checkpoint."""
        env = self.market.state_dict()
        market = {name: torch.from_numpy(a) for name, a in env["market"].items()}
        return {"market": market, "rng": env["rng"], "returns": self.stats.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episodes state_dict() saved (never reset from the seed again)."""
        market = {name: t.numpy() for name, t in state["market"].items()}
        self.market.load_state_dict({"market": market, "rng": state["rng"]})
        self.stats.load_state_dict(state["returns"])
        self._seed = None

    # SB3's VecEnv asks for these; one batched market has no sub-environments to reach into.
    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.market, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.market, attr_name, value)

    def env_method(
        self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} has no per-episode env to call")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


class LearnerReward(VecEnvWrapper):
    """What the learner sees: the env's reward, potential-shaped by the TWAP value and with the
    price noise of the held inventory removed (`agents.shaping`), times the algorithm's reward
    `unit` (SAC's `reward_unit`; 1 for PPO). Observations, episode ends and every reported
    number are the env's."""

    def __init__(self, venv: MarketVecEnv, rl: RLSettings, unit: float = 1.0) -> None:
        super().__init__(venv)
        self.market_env = venv
        self.rl = rl
        self.unit = np.float32(unit)

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        start = self.market_env.obs  # the observations these actions answered
        obs, reward, terminated, infos = self.venv.step_wait()
        p = self.market_env.params
        shaped = learner_reward(p, self.rl, start, reward, self.market_env.next_obs, terminated)
        if self.unit != 1.0:
            shaped = shaped * self.unit
        return obs, shaped, terminated, infos

    def state_dict(self) -> dict[str, Any]:
        """The market's state and the last observations (the shaping's start point)."""
        obs = torch.from_numpy(self.market_env.obs.copy())
        return {"market": self.market_env.state_dict(), "obs": obs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.market_env.load_state_dict(state["market"])
        self.market_env.obs = state["obs"].numpy()
