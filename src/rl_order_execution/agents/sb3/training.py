"""Training any Stable-Baselines3 algorithm on our market, top to bottom: build the batched VecEnv
and the learner's reward, let SB3 learn, and at every step of it (a callback) log with our tags,
validate on the run's own validation set, keep the best policy and stop at the episode budget."""

from __future__ import annotations

import logging
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.agents.sb3.agent import SB3Agent
from rl_order_execution.agents.sb3.env import MarketVecEnv
from rl_order_execution.agents.training import (
    NO_HOOKS,
    BestPolicy,
    ProgressFn,
    ScalarLogger,
    TrainHooks,
    TrainingSeeds,
    TrainResult,
    ValidationHook,
)
from rl_order_execution.agents.validation import Validator
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams

if TYPE_CHECKING:
    from rl_order_execution.agents.sb3.spec import SB3Algorithm

log = logging.getLogger(__name__)

NEVER = 10**12  # SB3's timestep budget: the callback stops at the episode budget instead


def _number(value: Any) -> float | None:
    """A logged value as a float when it is one real number: SB3 logs Python, numpy (PPO's
    approx_kl is a numpy float32, no Python float) and one-element array or tensor values."""
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(-1)[0])
    return None


class TagWriter(KVWriter):
    """Every scalar SB3 logs for TensorBoard as one of our tags: `train/x` as `losses/x`, by
    gradient update (as the Double DQN's losses); SB3's other namespaces as they are
    (`time/fps`), at SB3's own step (env transitions). What SB3 keeps out of TensorBoard (its
    counters: n_updates, total_timesteps, ...) stays out."""

    def __init__(self, logger: ScalarLogger) -> None:
        self.logger = logger

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
    ) -> None:
        updates = int(key_values.get("train/n_updates", step))
        for key, value in key_values.items():
            number = _number(value)
            if number is None or "tensorboard" in (key_excluded.get(key) or ()):
                continue
            namespace, _, name = key.rpartition("/")
            if namespace == "train":
                self.logger.add_scalar(f"losses/{name}", number, updates)
            else:
                self.logger.add_scalar(key if namespace else f"sb3/{key}", number, step)

    def close(self) -> None:
        pass


@dataclass
class Supervisor(BaseCallback):
    """Called by SB3 after every vectorised step: charts, validation, keep-best, progress, stop."""

    agent: SB3Agent
    env: MarketVecEnv
    budget: int
    eval_interval: int
    validator: Validator
    scalars: ScalarLogger | None = None
    progress: ProgressFn | None = None
    validation_hook: ValidationHook | None = None
    best: BestPolicy = field(init=False)
    next_eval: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.next_eval = self.eval_interval
        self.best = BestPolicy(self.agent.policy_state())

    def _on_step(self) -> bool:
        env, episodes = self.env, self.env.episodes
        if env.finished and self.scalars is not None:
            self.scalars.add_scalar("charts/episodic_return_bps", env.mean_return, episodes)
        if episodes >= self.next_eval or episodes >= self.budget:
            self.next_eval = episodes + self.eval_interval
            self.validate(episodes)
        if self.progress is not None:
            self.progress(episodes, {"return_bps": env.mean_return, "epsilon": math.nan})
        return episodes < self.budget

    def validate(self, episodes: int) -> None:
        bps = self.validator.savings_bps(self.agent)
        self.best.record(self.agent, episodes, bps)
        log.debug("validation after %d episodes: %.2f bps cost savings vs TWAP", episodes, bps)
        if self.scalars is not None:
            self.scalars.add_scalar("eval/cost_savings_vs_twap_bps", bps, episodes)
        if self.validation_hook is not None:
            self.validation_hook(episodes, bps)


def train_sb3(
    algorithm: SB3Algorithm, settings: Settings, p: MarketParams, hooks: TrainHooks = NO_HOOKS
) -> TrainResult:
    """Train an SB3 algorithm for settings.rl.episodes episodes on market p.

    Hooks as for every agent (`agents.training.TrainHooks`). Seeds: the env's stream and SB3's
    `seed=` (its torch and numpy generators) both come from the master seed's SeedSequence.
    """
    rl = settings.rl
    seeds = TrainingSeeds.from_master(settings.simulation.seed)
    n_envs = min(algorithm.section(settings).n_envs, rl.episodes)
    market = MarketVecEnv(p, n_envs, seeds.env)
    learner = algorithm.learner_env(settings, market)
    model = algorithm.build(settings, learner, seeds.agent, resolve_device(rl.device))
    logger = hooks.logger
    model.set_logger(Logger(None, [TagWriter(logger)] if logger is not None else []))
    agent = SB3Agent(algorithm.kind, model.policy, p)
    supervisor = Supervisor(
        agent,
        market,
        budget=rl.episodes,
        eval_interval=rl.eval_interval,
        validator=hooks.validator or Validator.from_settings(settings, p),
        scalars=logger,
        progress=hooks.progress,
        validation_hook=hooks.validation,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=NEVER, callback=supervisor, log_interval=_log_interval(model))
    if rl.keep_best:
        agent.load_policy_state(supervisor.best.state)
    agent.policy.set_training_mode(False)
    return TrainResult(
        agent=agent,
        episodes=market.episodes,
        updates=int(getattr(model, "_n_updates", 0)),
        seconds=time.perf_counter() - start,
        best_validation_bps=float(supervisor.best.bps),
        history=supervisor.best.history,
    )


def _log_interval(model: BaseAlgorithm) -> int:
    """SB3 writes its losses every rollout (on-policy) or every n_envs episodes (off-policy)."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    return int(model.n_envs) if isinstance(model, OffPolicyAlgorithm) else 1
