"""SAC (kind "sac"), Stable-Baselines3's, on the continuous speed: how it is built from our
settings, its policy's shape, its reward unit and its Optuna search space (`spec` trains and
restores it).

SB3 is imported inside the functions: a Double-DQN run never pays its import (torch.optim).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import optuna
import torch
from torch import nn

from rl_order_execution.agents.sb3.spec import SB3Algorithm
from rl_order_execution.agents.shaping import static_value
from rl_order_execution.config import OptimizationSettings, SACSettings, Settings
from rl_order_execution.market import (
    MarketParams,
    execution_price,
    expected_next_price,
    step_reward,
)

if TYPE_CHECKING:
    from stable_baselines3 import SAC

    from rl_order_execution.agents.sb3.env import LearnerReward, SpeedMap

KIND = "sac"
START_LIMIT = 0.99  # the mean action starts within [-0.99, 0.99], where atanh is finite


def action_curvature_bps(p: MarketParams, speeds: SpeedMap | None = None) -> float:
    """How sharply the learner's one-step reward bends in SB3's action, in bps per action unit^2.

    At the start (q = Q, S = P0, k = 0), the shaped one-step reward of selling x base rates and
    then following the static schedule is quadratic in x (impact, the inventory penalty and the
    static value are quadratic in the trade; the expected next price is affine in it), so three
    speeds give its second difference exactly. An action unit is `speeds.speed_per_action`
    base rates (None: the box map's, max_multiplier / 2). With the box map, on the default
    market 95.2; with N = 10 and lambda = 1 (`short_risk_averse`) 2,676: the same noise costs
    28 times as much there. NaN where it is undefined (N < 2)."""
    from rl_order_execution.agents.sb3.env import BOX

    if p.N < 2:
        return math.nan
    x = np.array([0.0, 1.0, 2.0])
    n = x * (p.Q / p.N)
    q, S = np.full(3, p.Q), np.full(3, p.P0)
    r = step_reward(p, q, n, execution_price(p, S, n, np.zeros(3, dtype=np.int64)))
    after = static_value(p, np.full(3, p.N - 1.0), q - n, expected_next_price(p, S, q, n))
    a = r + (after - static_value(p, np.full(3, float(p.N)), q, S)) * p.bps
    per_base_rate = -(a[0] - 2.0 * a[1] + a[2])
    return float(per_base_rate * (speeds or BOX).speed_per_action(p) ** 2)


@lru_cache(maxsize=8)
def reference_curvature_bps(speeds: SpeedMap | None = None) -> float:
    """`action_curvature_bps` of the default market (MarketParams()) under the same map: the
    unit (95.2 with the box map, 15.2 with SAC's default, 4 times the static speed)."""
    return action_curvature_bps(MarketParams(), speeds)


def reward_unit(p: MarketParams, speeds: SpeedMap | None = None) -> float:
    """The factor SAC's learner reward is multiplied by: the default market's
    `action_curvature_bps` over this market's, under the same speed map, so that the critic's
    values and the entropy term (whose coefficient and target are in action units) mean the
    same on every market. Exactly 1 on the default market; 1 where the curvature is not a
    positive number."""
    c = action_curvature_bps(p, speeds)
    return reference_curvature_bps(speeds) / c if math.isfinite(c) and c > 0 else 1.0


def speed_map(sac: SACSettings) -> SpeedMap:
    """SAC's actions: [-1, 1] onto [0, max_relative_speed] times the static schedule's speed
    (None: onto the market's whole box, [0, max_multiplier])."""
    from rl_order_execution.agents.sb3.env import SpeedMap

    return SpeedMap(sac.max_relative_speed)


def policy_kwargs(sac: SACSettings) -> dict[str, Any]:
    """The actor's and each critic's shape: ReLU MLPs of the same widths."""
    return {"net_arch": list(sac.hidden_sizes), "activation_fn": nn.ReLU}


def build(settings: Settings, env: LearnerReward, seed: int, device: torch.device) -> SAC:
    from stable_baselines3 import SAC

    rl, sac = settings.rl, settings.rl.sac
    p, speeds = env.market_env.params, env.market_env.speed_map
    ent_coef = f"auto_{sac.ent_coef}" if sac.auto_entropy else sac.ent_coef
    model = SAC(
        "MlpPolicy",
        env,  # the learner's reward in SAC's `reward_unit` (the spec's learner_env)
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
    # The action is tanh of the actor's mu: start its mean at the reference pace on every market
    # (the static schedule's speed, TWAP's on a flat profile), not at the box's middle (twice
    # that with SAC's default map, 5x TWAP's pace with the box map at the default cap). A map
    # whose top is at or below the reference pace puts it at (or past) the box's end: start
    # just inside it, where atanh is finite.
    start = math.atanh(min(max(speeds.start_action(p), -START_LIMIT), START_LIMIT))
    nn.init.constant_(cast(torch.Tensor, model.actor.mu.bias), start)
    return model


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


ALGORITHM = SB3Algorithm(
    kind=KIND,
    build=build,
    policy="stable_baselines3.sac.policies:SACPolicy",
    policy_kwargs=policy_kwargs,
    suggest=suggest,
    reward_unit=reward_unit,
    speed_map=speed_map,
)
SPEC = ALGORITHM.spec()
