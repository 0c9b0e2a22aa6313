"""SAC (kind "sac"), Stable-Baselines3's, on the continuous speed: how it is built from our
settings, restored from our checkpoint, and its Optuna search space.

SB3 is imported inside the functions: a Double-DQN run never pays its import (torch.optim).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import optuna
import torch
from torch import nn

from rl_order_execution.agents.base import AgentSpec
from rl_order_execution.config import OptimizationSettings, SACSettings, Settings

if TYPE_CHECKING:
    from stable_baselines3 import SAC

    from rl_order_execution.agents.sb3.agent import SB3Agent
    from rl_order_execution.agents.sb3.env import LearnerReward
    from rl_order_execution.agents.training import (
        ProgressFn,
        ScalarLogger,
        TrainResult,
        ValidationHook,
    )
    from rl_order_execution.agents.validation import Validator

KIND = "sac"
START_LIMIT = 0.99  # the mean action starts within [-0.99, 0.99], where atanh is finite


def policy_kwargs(sac: SACSettings) -> dict[str, Any]:
    """The actor's and each critic's shape: ReLU MLPs of the same widths."""
    return {"net_arch": list(sac.hidden_sizes), "activation_fn": nn.ReLU}


def build(settings: Settings, env: LearnerReward, seed: int, device: torch.device) -> SAC:
    from stable_baselines3 import SAC

    from rl_order_execution.agents.sb3.env import base_rate_action

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
        train_freq=1,  # one vectorised step of all n_envs episodes ...
        gradient_steps=sac.gradient_steps,  # ... then this many gradient steps
        ent_coef=ent_coef,
        target_entropy=sac.target_entropy,
        policy_kwargs=policy_kwargs(sac),
        seed=seed,
        device=device,
    )
    # The action is tanh of the actor's mu: start its mean at speed 1 (TWAP's pace) on every
    # market, not at the box's middle (max_multiplier / 2 = 5x at the default cap), far from any
    # sensible schedule. tanh's slope there (0.36 at the default cap) also makes the early noise
    # finer in speed units. A cap of 1 or less puts speed 1 at (or past) the box's end: start
    # just inside it, where atanh is finite.
    p = env.market_env.params
    start = math.atanh(min(max(base_rate_action(p), -START_LIMIT), START_LIMIT))
    nn.init.constant_(cast(torch.Tensor, model.actor.mu.bias), start)
    return model


def train(
    settings: Settings,
    *,
    logger: ScalarLogger | None = None,
    progress: ProgressFn | None = None,
    validation_hook: ValidationHook | None = None,
    validator: Validator | None = None,
) -> TrainResult:
    """Train SAC on settings.simulation with settings.rl (budget, shaping) and settings.rl.sac."""
    from rl_order_execution.agents.sb3.training import train_sb3

    return train_sb3(
        KIND,
        settings.rl.sac.n_envs,
        build,
        settings,
        logger=logger,
        progress=progress,
        validation_hook=validation_hook,
        validator=validator,
    )


def restore(settings: Settings, state: dict[str, Any], device: torch.device) -> SB3Agent:
    """The policy of a checkpoint: the settings it was trained with and its tensors."""
    from stable_baselines3.sac.policies import SACPolicy

    from rl_order_execution.agents.sb3.agent import restored
    from rl_order_execution.market import ContinuousExecutionEnv

    env = ContinuousExecutionEnv(settings.simulation)
    kwargs = policy_kwargs(settings.rl.sac)
    return restored(KIND, SACPolicy, kwargs, env.params, env.observation_space, state, device)


# The search space: rl-baselines3-zoo's for SAC, narrowed to what fits a 50-step task.
N_ENVS = [8, 16, 32, 64]
GRADIENT_STEPS = [1, 2, 4, 8]
BATCH_SIZES = [64, 128, 256, 512]
BUFFER_SIZES = [10_000, 100_000, 1_000_000]
LEARNING_STARTS = [0, 1000, 5000]
TAUS = [0.001, 0.005, 0.01, 0.02, 0.05]
WIDTHS = [64, 128, 256]


def suggest(trial: optuna.trial.BaseTrial, opt: OptimizationSettings) -> dict[str, Any]:
    """Sample one SAC configuration; returns the rl settings it changes (its `sac` section).

    The learning-rate range is optimization.lr_min..lr_max, as for every agent."""
    width = trial.suggest_categorical("sac_hidden_width", WIDTHS)
    return {
        "agent": KIND,  # best_params.yaml records the agent its settings are for
        "sac": {
            "n_envs": trial.suggest_categorical("sac_n_envs", N_ENVS),
            "gradient_steps": trial.suggest_categorical("sac_gradient_steps", GRADIENT_STEPS),
            "batch_size": trial.suggest_categorical("sac_batch_size", BATCH_SIZES),
            "learning_rate": trial.suggest_float("sac_lr", opt.lr_min, opt.lr_max, log=True),
            "buffer_size": trial.suggest_categorical("sac_buffer_size", BUFFER_SIZES),
            "learning_starts": trial.suggest_categorical("sac_learning_starts", LEARNING_STARTS),
            "tau": trial.suggest_categorical("sac_tau", TAUS),
            "ent_coef": trial.suggest_float("sac_ent_coef", 0.01, 1.0, log=True),
            "hidden_sizes": [width] * opt.hidden_layers,
        },
    }


SPEC = AgentSpec(kind=KIND, train=train, load=restore, suggest=suggest)
