"""SB3's logged scalars reach our ScalarLogger (TensorBoard) under namespaced tags, whatever
number type SB3 logs them as: PPO's approx_kl (a numpy float32) included."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
from stable_baselines3.common.logger import Logger

from rl_order_execution.agents.registry import agent_spec
from rl_order_execution.agents.sb3.training import TagWriter
from rl_order_execution.agents.training import TrainHooks
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams


class FakeScalars:
    """A ScalarLogger that keeps every (step, value) by tag."""

    def __init__(self) -> None:
        self.tags: defaultdict[str, list[tuple[int, float]]] = defaultdict(list)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        assert isinstance(value, float)
        self.tags[tag].append((step, value))


def test_every_sb3_scalar_reaches_the_logger_under_a_namespaced_tag() -> None:
    scalars = FakeScalars()
    logger = Logger(None, [TagWriter(scalars)])
    logger.record("train/approx_kl", np.mean([np.float32(0.02), np.float32(0.04)]))
    logger.record("train/value_loss", np.float64(1.5))
    logger.record("train/loss", torch.tensor(0.25))
    logger.record("train/clip_fraction", np.array(0.125))
    logger.record("train/clip_range", 0.2)
    logger.record("train/n_updates", 40, exclude="tensorboard")  # the step, not a scalar
    logger.record("time/fps", 900)
    logger.record("time/total_timesteps", 6400, exclude="tensorboard")
    logger.record("rollout/ep_rew_mean", -3.5)
    logger.record("train/note", "text is not a scalar")
    logger.dump(step=6400)
    assert dict(scalars.tags) == {
        "losses/approx_kl": [(40, float(np.float32(0.03)))],
        "losses/value_loss": [(40, 1.5)],
        "losses/loss": [(40, 0.25)],
        "losses/clip_fraction": [(40, 0.125)],
        "losses/clip_range": [(40, 0.2)],
        "time/fps": [(6400, 900.0)],
        "rollout/ep_rew_mean": [(6400, -3.5)],
    }


def test_ppo_training_logs_approx_kl_with_its_other_losses() -> None:
    section = {"n_envs": 16, "n_steps": 16, "batch_size": 64, "n_epochs": 2, "hidden_sizes": [16]}
    data = {"agent": "ppo", "episodes": 64, "eval_interval": 32, "validation_episodes": 50}
    settings = Settings.model_validate({"rl": data | {"ppo": section}})
    scalars = FakeScalars()
    agent_spec("ppo").train(settings, MarketParams.of(settings), TrainHooks(logger=scalars))
    kl, value_loss = scalars.tags["losses/approx_kl"], scalars.tags["losses/value_loss"]
    assert len(kl) == len(value_loss) > 5  # one per rollout, at the same update counts
    assert [step for step, _ in kl] == [step for step, _ in value_loss]
    assert all(math.isfinite(v) and v >= 0.0 for _, v in kl)  # SB3's estimator is >= 0
    assert any(v > 0.0 for _, v in kl)
