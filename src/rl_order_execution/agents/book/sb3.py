"""Stable-Baselines3's PPO (on the menu, a categorical policy) and SAC (on the continuous action
[-M, max_depth]) on the book market: the lockstep `BookVecEnv` behind SB3's VecEnv with the
learner's reward, the loop around SB3's `learn` (our tags, validation, keep-best, the episode
budget) and the trained policy behind the `BookAgent` protocol."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)
from torch import nn

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.agents.book.base import BookTrainResult, KeepBest
from rl_order_execution.agents.book.reward import learner_reward, reward_unit
from rl_order_execution.agents.book.validation import BookValidator
from rl_order_execution.agents.dqn.agent import linear_decay
from rl_order_execution.agents.sb3.ppo import policy_kwargs as ppo_policy_kwargs
from rl_order_execution.agents.sb3.sac import policy_kwargs as sac_policy_kwargs
from rl_order_execution.agents.sb3.training import NEVER, TagWriter
from rl_order_execution.agents.training import (
    ProgressFn,
    ScalarLogger,
    TrainingSeeds,
    ValidationHook,
)
from rl_order_execution.config import Settings
from rl_order_execution.market.book import BookParams, BookVecEnv
from rl_order_execution.market.book.dynamics import continuous_bounds
from rl_order_execution.market.book.envs import observation_space
from rl_order_execution.market.book.params import FloatArray

UNIT_BOX = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


def depth_from_action(p: BookParams, actions: np.ndarray) -> FloatArray:
    """SB3's action in [-1, 1] (clipped into it) as SAC's a in [-M, max_depth], shape (B,)."""
    low, high = continuous_bounds(p)
    a = np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions)), -1.0, 1.0)
    out: FloatArray = low + (a + 1.0) * (0.5 * (high - low))
    return out


class BookSB3Env(VecEnv):
    """B book episodes in lockstep behind SB3's VecEnv: the menu (Discrete) or SB3's [-1, 1] box
    for SAC's continuous action; rewards are the learner's (`agents.book.reward`). A finished
    episode restarts in the same step, its last observation in infos[i]["terminal_observation"]."""

    def __init__(
        self, p: BookParams, num_envs: int, seed: int, continuous: bool, gamma: float, unit: float
    ) -> None:
        self.market = BookVecEnv(num_envs, p, continuous)
        self.params, self.continuous, self.gamma, self.unit = p, continuous, gamma, unit
        action_space = UNIT_BOX if continuous else spaces.Discrete(p.n_actions)
        super().__init__(num_envs, observation_space(p), action_space)
        self._seed: int | None = seed  # the first reset only: one stream per training
        self._actions = np.zeros(num_envs)
        self._obs = np.zeros((num_envs, 6), dtype=np.float32)
        self.running = np.zeros(num_envs)
        self.recent: deque[float] = deque(maxlen=100)
        self.episodes = 0
        self.finished = 0

    def reset(self) -> VecEnvObs:
        self._obs, _ = self.market.reset(seed=self._seed)
        self._seed = None
        self.running[:] = 0.0
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        p = self.params
        raw = np.asarray(self._actions).reshape(self.num_envs, -1)[:, 0]
        actions = depth_from_action(p, raw) if self.continuous else raw.astype(np.int64)
        obs, reward, terminated, _, info = self.market.step(actions)
        final = obs
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self.running += reward
        self.finished = int(terminated.sum())
        if self.finished:
            final = np.where(terminated[:, None], info["final_obs"], obs)
            for i in np.flatnonzero(terminated):
                infos[i]["terminal_observation"] = info["final_obs"][i]
            self.recent.extend(self.running[terminated].tolist())
            self.episodes += self.finished
            self.running[terminated] = 0.0
        shaped = learner_reward(p, self.gamma, self.unit, self._obs, reward, final)
        self._obs = obs
        return obs, shaped, terminated.copy(), infos

    @property
    def mean_return(self) -> float:
        """Mean env return (bps) of the last 100 finished episodes."""
        return float(np.mean(self.recent)) if self.recent else math.nan

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


class BookSB3Agent:
    """An SB3 policy acting deterministically: PPO's most likely menu action, SAC's tanh of its
    mean mapped onto [-M, max_depth]."""

    def __init__(self, kind: str, policy: BasePolicy, p: BookParams, continuous: bool) -> None:
        self.kind, self.policy, self.params, self._continuous = kind, policy, p, continuous

    @property
    def continuous(self) -> bool:
        return self._continuous

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions, _ = self.policy.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        if self._continuous:
            return depth_from_action(self.params, np.asarray(actions))
        return np.asarray(actions, dtype=np.int64).reshape(-1)

    def policy_state(self) -> dict[str, Any]:
        return {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()}

    def load_policy_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state)


def build_ppo(
    settings: Settings, env: BookSB3Env, seed: int, device: torch.device
) -> BaseAlgorithm:
    from stable_baselines3 import PPO

    rl, ppo = settings.rl, settings.rl.ppo
    kwargs = ppo_policy_kwargs(ppo)
    del kwargs["log_std_init"]  # a categorical policy has no std
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=ppo.learning_rate,
        n_steps=ppo.n_steps,
        batch_size=min(ppo.batch_size, ppo.n_steps * env.num_envs),
        n_epochs=ppo.n_epochs,
        gamma=rl.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        policy_kwargs=kwargs,
        seed=seed,
        device=device,
    )


def build_sac(
    settings: Settings, env: BookSB3Env, seed: int, device: torch.device
) -> BaseAlgorithm:
    from stable_baselines3 import SAC

    rl, sac = settings.rl, settings.rl.sac
    ent_coef = f"auto_{sac.ent_coef}" if sac.auto_entropy else sac.ent_coef
    model = SAC(
        "MlpPolicy",
        env,
        learning_rate=sac.learning_rate,
        buffer_size=sac.buffer_size,
        learning_starts=sac.learning_starts,
        batch_size=sac.batch_size,
        tau=sac.tau,
        gamma=rl.gamma,
        train_freq=1,
        gradient_steps=sac.gradient_steps,
        ent_coef=ent_coef,
        target_entropy=sac.target_entropy,
        policy_kwargs=sac_policy_kwargs(sac),
        seed=seed,
        device=device,
    )
    # start at a limit order at the ask (a = 0), the passive strategy's, not the box's middle
    low, high = continuous_bounds(env.params)
    start = math.atanh(min(max(2.0 * (0.0 - low) / (high - low) - 1.0, -0.99), 0.99))
    nn.init.constant_(cast(torch.Tensor, model.actor.mu.bias), start)
    return model


def decayed(rate: Any, progress: float, end_fraction: float) -> Schedule:
    """SB3's learning-rate schedule at a fraction `progress` of the episode budget: the rate
    times linear_decay (the Double DQN's schedule, rl.lr_end_fraction). SB3's own progress never
    moves: its timestep budget is unbounded, the episode budget stops it."""
    value = float(rate) * linear_decay(progress, end_fraction)
    return lambda _remaining: value


@dataclass
class Supervisor(BaseCallback):
    """Called by SB3 after every vectorised step: charts, validation, keep-best, progress, stop."""

    env: BookSB3Env
    best: KeepBest
    budget: int
    scalars: ScalarLogger | None = None
    progress: ProgressFn | None = None
    lr_end_fraction: float = 1.0  # the learning rate decays linearly to this share of its own

    def __post_init__(self) -> None:
        super().__init__()

    def _on_step(self) -> bool:
        env, episodes = self.env, self.env.episodes
        if self.lr_end_fraction != 1.0:  # SB3 reads lr_schedule at every update
            self.model.lr_schedule = decayed(
                self.model.learning_rate, episodes / self.budget, self.lr_end_fraction
            )
        if env.finished and self.scalars is not None:
            self.scalars.add_scalar("charts/episodic_return_bps", env.mean_return, episodes)
        if self.best.due(episodes, self.budget):
            self.best.validate(episodes)
        if self.progress is not None:
            self.progress(episodes, {"return_bps": env.mean_return, "epsilon": math.nan})
        return episodes < self.budget


def train_sb3_book(
    settings: Settings,
    p: BookParams,
    validator: BookValidator,
    *,
    logger: ScalarLogger | None = None,
    progress: ProgressFn | None = None,
    validation_hook: ValidationHook | None = None,
) -> BookTrainResult:
    """Train PPO (menu) or SAC (continuous) for rl.episodes episodes; keep the best policy."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    rl, kind = settings.rl, settings.rl.agent
    continuous = kind == "sac"
    n_envs = rl.sac.n_envs if continuous else rl.ppo.n_envs
    seeds = TrainingSeeds.from_master(settings.simulation.seed)
    unit = reward_unit(p)
    env = BookSB3Env(p, min(n_envs, rl.episodes), seeds.env, continuous, rl.gamma, unit)
    build = build_sac if continuous else build_ppo
    model = build(settings, env, seeds.agent, resolve_device(rl.device))
    model.set_logger(Logger(None, [TagWriter(logger)] if logger is not None else []))
    agent = BookSB3Agent(kind, model.policy, p, continuous)
    best = KeepBest(agent, validator, rl.eval_interval, logger, validation_hook)
    supervisor = Supervisor(env, best, rl.episodes, logger, progress, rl.lr_end_fraction)
    log_interval = int(model.n_envs) if isinstance(model, OffPolicyAlgorithm) else 1
    start = time.perf_counter()
    model.learn(total_timesteps=NEVER, callback=supervisor, log_interval=log_interval)
    if rl.keep_best:
        best.restore_best()
    agent.policy.set_training_mode(False)
    return BookTrainResult(
        agent=agent,
        episodes=env.episodes,
        updates=int(getattr(model, "_n_updates", 0)),
        seconds=time.perf_counter() - start,
        best_validation_bps=float(best.bps),
        unit=unit,
        history=best.history,
    )
