"""Training any Stable-Baselines3 algorithm on our market, top to bottom: build the batched VecEnv
and the learner's reward (or continue a saved training), let SB3 learn, and at every step of it (a
callback) log with our tags, validate on the run's own validation set, keep the best policy and
stop at the episode budget; at the start of every rollout, offer the checkpoint its state (saved
when due, and on Ctrl-C, which then stops training)."""

from __future__ import annotations

import logging
import math
import numbers
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.agents.sb3.agent import SB3Agent
from rl_order_execution.agents.sb3.env import LearnerReward, MarketVecEnv
from rl_order_execution.agents.sb3.state import algorithm_state, load_algorithm_state
from rl_order_execution.agents.training import (
    NO_HOOKS,
    BestPolicy,
    ScalarLogger,
    TrainHooks,
    TrainingSeeds,
    TrainResult,
)
from rl_order_execution.agents.validation import Validator
from rl_order_execution.config import RLSettings, Settings
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


class Supervisor(BaseCallback):
    """Called by SB3 at the start of every rollout (a clean point: checkpoint, Ctrl-C) and after
    every vectorised step (charts, validation, keep-best, progress, the episode budget)."""

    def __init__(
        self,
        model: BaseAlgorithm,
        agent: SB3Agent,
        learner: LearnerReward,
        rl: RLSettings,
        validator: Validator,
        hooks: TrainHooks,
    ) -> None:
        super().__init__()
        self.algorithm, self.agent, self.learner = model, agent, learner
        self.env = learner.market_env
        self.budget, self.eval_interval = rl.episodes, rl.eval_interval
        self.validator, self.hooks = validator, hooks
        self.best = BestPolicy(agent.policy_state())
        self.next_eval = rl.eval_interval
        self.seconds_before = 0.0  # spent in earlier sessions of a resumed run
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def _on_rollout_start(self) -> None:
        # The last rollout is learnt from and the next not begun: what is saved here is whole.
        # PPO comes here every n_steps vectorised steps, SAC at every one (train_freq=1).
        if self.hooks.checkpoints is not None:
            self.hooks.checkpoints.reached(self.env.episodes, False, self.state_dict)

    def _on_step(self) -> bool:
        env, episodes, scalars = self.env, self.env.episodes, self.hooks.logger
        if env.finished and scalars is not None:
            scalars.add_scalar("charts/episodic_return_bps", env.mean_return, episodes)
        if episodes >= self.next_eval or episodes >= self.budget:
            self.next_eval = episodes + self.eval_interval
            self.validate(episodes)
        if self.hooks.progress is not None:
            self.hooks.progress(episodes, {"return_bps": env.mean_return, "epsilon": math.nan})
        return episodes < self.budget

    def validate(self, episodes: int) -> None:
        bps = self.validator.savings_bps(self.agent)
        self.best.record(self.agent, episodes, bps)
        log.debug("validation after %d episodes: %.2f bps cost savings vs TWAP", episodes, bps)
        if self.hooks.logger is not None:
            self.hooks.logger.add_scalar("eval/cost_savings_vs_twap_bps", bps, episodes)
        if self.hooks.validation is not None:
            self.hooks.validation(episodes, bps)

    def state_dict(self) -> dict[str, Any]:
        """Everything the rest of training depends on, at the start of a rollout."""
        return {
            "algorithm": algorithm_state(self.algorithm),
            "env": self.learner.state_dict(),
            "best": self.best.state_dict(),
            "next_eval": self.next_eval,
            "seconds_before": self.seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["env"])
        self.best.load_state_dict(state["best"])
        self.next_eval = int(state["next_eval"])
        self.seconds_before, self.started = float(state["seconds_before"]), time.perf_counter()
        load_algorithm_state(self.algorithm, state["algorithm"])  # its generators last


def train_sb3(
    algorithm: SB3Algorithm, settings: Settings, p: MarketParams, hooks: TrainHooks = NO_HOOKS
) -> TrainResult:
    """Train an SB3 algorithm for settings.rl.episodes episodes on market p, or continue the
    training hooks.checkpoints saved.

    Hooks as for every agent (`agents.training.TrainHooks`). Seeds: the env's stream and SB3's
    `seed=` (its torch and numpy generators) both come from the master seed's SeedSequence.
    """
    rl = settings.rl
    seeds = TrainingSeeds.from_master(settings.simulation.seed)
    saved = hooks.checkpoints.restore() if hooks.checkpoints is not None else None
    # a resumed run keeps its lockstep width, even under a larger episode budget
    n_envs = (
        min(algorithm.section(settings).n_envs, rl.episodes)
        if saved is None
        else len(saved["env"]["market"]["returns"]["running"])
    )
    speeds = algorithm.speeds(settings)
    learner = algorithm.learner_env(settings, MarketVecEnv(p, n_envs, seeds.env, speeds))
    model = algorithm.build(settings, learner, seeds.agent, resolve_device(rl.device))
    logger = hooks.logger
    model.set_logger(Logger(None, [TagWriter(logger)] if logger is not None else []))
    agent = SB3Agent(algorithm.kind, model.policy, p, speeds)
    validator = hooks.validator or Validator.from_settings(settings, p)
    supervisor = Supervisor(model, agent, learner, rl, validator, hooks)
    if saved is not None:
        supervisor.load_state_dict(saved)
    model.learn(
        total_timesteps=NEVER - model.num_timesteps,  # SB3's own budget, hence progress: NEVER
        callback=supervisor,
        log_interval=_log_interval(model),
        reset_num_timesteps=saved is None,  # a resumed run continues SB3's counters and obs
    )
    if rl.keep_best:
        agent.load_policy_state(supervisor.best.state)
    agent.policy.set_training_mode(False)
    return TrainResult(
        agent=agent,
        episodes=learner.market_env.episodes,
        updates=int(getattr(model, "_n_updates", 0)),
        seconds=supervisor.seconds,
        best_validation_bps=float(supervisor.best.bps),
        history=supervisor.best.history,
    )


def _log_interval(model: BaseAlgorithm) -> int:
    """SB3 writes its losses every rollout (on-policy) or every n_envs episodes (off-policy)."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    return int(model.n_envs) if isinstance(model, OffPolicyAlgorithm) else 1
