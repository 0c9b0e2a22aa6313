"""The Double DQN's Optuna search space."""

from __future__ import annotations

from typing import Any

import optuna

from rl_order_execution.config import OptimizationSettings


def suggest(trial: optuna.trial.BaseTrial, opt: OptimizationSettings) -> dict[str, Any]:
    """Sample one configuration; returns the rl settings it changes (rl.dqn's, rl.gamma)."""
    width = trial.suggest_categorical("hidden_width", opt.hidden_widths)
    dqn = {
        "lr": trial.suggest_float("lr", opt.lr_min, opt.lr_max, log=True),
        "batch_size": trial.suggest_categorical("batch_size", opt.batch_sizes),
        "hidden_sizes": [width] * opt.hidden_layers,
        "target_update": trial.suggest_int(
            "target_update", opt.target_update_min, opt.target_update_max, log=True
        ),
        "epsilon_decay": trial.suggest_float(
            "epsilon_decay", opt.epsilon_decay_min, opt.epsilon_decay_max
        ),
        "updates_per_step": trial.suggest_float(
            "updates_per_step", opt.updates_per_step_min, opt.updates_per_step_max, log=True
        ),
        "n_envs": trial.suggest_categorical("n_envs", opt.n_envs_choices),
    }
    return {"dqn": dqn} | _gamma(trial, opt)


def _gamma(trial: optuna.trial.BaseTrial, opt: OptimizationSettings) -> dict[str, Any]:
    """The discount, only when asked: the cost is undiscounted over a finite horizon, so
    gamma = 1 is the objective itself and any other value optimises something else."""
    if not opt.search_gamma:
        return {}
    return {"gamma": trial.suggest_float("gamma", opt.gamma_min, opt.gamma_max)}
