"""PPO (kind "ppo"), Stable-Baselines3's, on the continuous speed: how it is built from our
settings, its policy's shape and its Optuna search space (`spec` trains and restores it).

SB3 is imported inside the functions: a Double-DQN run never pays its import (torch.optim).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import optuna
import torch
from torch import nn

from rl_order_execution.agents.sb3.spec import SB3Algorithm
from rl_order_execution.config import OptimizationSettings, PPOSettings, Settings

if TYPE_CHECKING:
    from stable_baselines3 import PPO

    from rl_order_execution.agents.sb3.env import LearnerReward

KIND = "ppo"


def policy_kwargs(ppo: PPOSettings) -> dict[str, Any]:
    """The actor-critic's shape: separate tanh MLPs for the policy and the value."""
    return {
        "net_arch": {"pi": list(ppo.hidden_sizes), "vf": list(ppo.hidden_sizes)},
        "activation_fn": nn.Tanh,
        "log_std_init": ppo.log_std_init,
    }


def build(settings: Settings, env: LearnerReward, seed: int, device: torch.device) -> PPO:
    from stable_baselines3 import PPO

    from rl_order_execution.agents.sb3.env import base_rate_action

    rl, ppo = settings.rl, settings.rl.ppo
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=ppo.learning_rate,
        n_steps=ppo.n_steps,
        batch_size=min(ppo.batch_size, ppo.n_steps * env.num_envs),  # at most one rollout
        n_epochs=ppo.n_epochs,
        gamma=rl.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        policy_kwargs=policy_kwargs(ppo),
        seed=seed,
        device=device,
    )
    # The mean action is action_net's output: start it at speed 1 (TWAP's pace, the reference
    # the shaping measures against) on every market, not at the box's middle (5x at the default
    # cap). PPO moves its mean by about clip_range x std per update, so from the middle a policy
    # with a small std (rl.ppo.log_std_init) spends its budget walking down.
    p = env.market_env.params
    nn.init.constant_(cast(torch.Tensor, model.policy.action_net.bias), base_rate_action(p))
    return model


# The search space: rl-baselines3-zoo's for PPO, narrowed to what fits a 50-step task.
N_ENVS = [16, 32, 64, 128]
N_STEPS = [16, 32, 64, 128]
BATCH_SIZES = [128, 256, 512, 1024]
N_EPOCHS = [5, 10, 20]
GAE_LAMBDAS = [0.8, 0.9, 0.95, 0.98, 1.0]
CLIP_RANGES = [0.1, 0.2, 0.3]
MAX_GRAD_NORMS = [0.3, 0.5, 1.0, 2.0]
WIDTHS = [32, 64, 128]


def suggest(trial: optuna.trial.BaseTrial, opt: OptimizationSettings) -> dict[str, Any]:
    """Sample one PPO configuration; returns the rl settings it changes (its `ppo` section).

    The learning-rate range is optimization.lr_min..lr_max, as for every agent."""
    width = trial.suggest_categorical("ppo_hidden_width", WIDTHS)
    return {
        "agent": KIND,  # best_params.yaml records the agent its settings are for
        "ppo": {
            "n_envs": trial.suggest_categorical("ppo_n_envs", N_ENVS),
            "n_steps": trial.suggest_categorical("ppo_n_steps", N_STEPS),
            "batch_size": trial.suggest_categorical("ppo_batch_size", BATCH_SIZES),
            "n_epochs": trial.suggest_categorical("ppo_n_epochs", N_EPOCHS),
            "learning_rate": trial.suggest_float("ppo_lr", opt.lr_min, opt.lr_max, log=True),
            "gae_lambda": trial.suggest_categorical("ppo_gae_lambda", GAE_LAMBDAS),
            "clip_range": trial.suggest_categorical("ppo_clip_range", CLIP_RANGES),
            "ent_coef": trial.suggest_float("ppo_ent_coef", 1e-8, 1e-2, log=True),
            "max_grad_norm": trial.suggest_categorical("ppo_max_grad_norm", MAX_GRAD_NORMS),
            "log_std_init": trial.suggest_float("ppo_log_std_init", -3.0, 0.0),
            "hidden_sizes": [width] * opt.hidden_layers,
        },
    }


ALGORITHM = SB3Algorithm(
    kind=KIND,
    build=build,
    policy="stable_baselines3.common.policies:ActorCriticPolicy",
    policy_kwargs=policy_kwargs,
    suggest=suggest,
)
SPEC = ALGORITHM.spec()
