"""What a Stable-Baselines3 algorithm carries from one rollout to the next, as tensors and plain
numbers (resume.pt is read with weights_only): its networks and optimisers (the ones its own
`save` writes), its counters and last observations, its replay buffer (off-policy), the losses its
logger holds for the next dump, and the generators it draws from.

Taken at the start of a rollout (our supervisor's clean point): the last rollout is learnt from
and the next not begun, so PPO's rollout buffer is empty and SAC's replay buffer holds every
transition so far. Loaded into a freshly built algorithm, SB3's `learn(reset_num_timesteps=False)`
continues bit for bit where the saved one stopped: on the CPU, resumed runs end with exactly the
uninterrupted run's weights, validations and logged losses (tests/test_sb3_resume.py), so no
difference had to be bounded. On CUDA the device's generator is saved too, but GPU kernels need
not be deterministic: there two uninterrupted runs may already differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.save_util import recursive_getattr

from rl_order_execution.market.shocks import generator_state

REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def algorithm_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The algorithm's whole training state at the start of a rollout."""
    if isinstance(model, OnPolicyAlgorithm) and (
        model.rollout_buffer.pos or model.rollout_buffer.full
    ):
        raise RuntimeError("an on-policy algorithm is saved only at the start of a rollout")
    _, variables = model._get_torch_save_params()
    return {
        "parameters": model.get_parameters(),  # the policy's and every optimiser's state_dict
        "variables": {name: recursive_getattr(model, name).detach().clone() for name in variables},
        "num_timesteps": model.num_timesteps,
        "n_updates": model._n_updates,
        "episode_num": model._episode_num,  # SAC dumps its logs every n_envs episodes by it
        "progress_remaining": model._current_progress_remaining,
        "last_obs": torch.from_numpy(np.array(model._last_obs)),
        "last_episode_starts": torch.from_numpy(np.array(model._last_episode_starts)),
        "logger": _pending(model.logger),
        "replay": _replay(model.replay_buffer) if isinstance(model, OffPolicyAlgorithm) else None,
        "generators": _generators(model),
    }


def load_algorithm_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Continue, in a freshly built algorithm, the training algorithm_state() saved."""
    model.set_parameters(state["parameters"], exact_match=True, device=model.device)
    with torch.no_grad():  # SAC's log_ent_coef: its optimiser holds this very tensor
        for name, value in state["variables"].items():
            recursive_getattr(model, name).copy_(value)
    model.num_timesteps = int(state["num_timesteps"])
    model._n_updates = int(state["n_updates"])
    model._episode_num = int(state["episode_num"])
    model._current_progress_remaining = float(state["progress_remaining"])
    model._last_obs = state["last_obs"].numpy()
    model._last_episode_starts = state["last_episode_starts"].numpy()
    _load_pending(model.logger, state["logger"])
    if isinstance(model, OffPolicyAlgorithm):
        _load_replay(model.replay_buffer, state["replay"])
    _load_generators(model, state["generators"])


def _pending(logger: Logger) -> dict[str, Any]:
    """The values recorded since the last dump (PPO's and SAC's losses of the last update)."""
    values = {  # numpy and torch scalars as Python numbers: weights_only loads no numpy type
        k: v.item() if isinstance(v, np.generic | np.ndarray | torch.Tensor) else v
        for k, v in logger.name_to_value.items()
    }
    return {
        "values": values,
        "counts": dict(logger.name_to_count),
        "excluded": dict(logger.name_to_excluded),
    }


def _load_pending(logger: Logger, state: dict[str, Any]) -> None:
    logger.name_to_value.update(state["values"])
    logger.name_to_count.update(state["counts"])
    logger.name_to_excluded.update(state["excluded"])


def _replay(buffer: ReplayBuffer | None) -> dict[str, Any]:
    """The filled part of the replay buffer, and where it writes next."""
    assert buffer is not None
    filled = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {
        name: torch.from_numpy(getattr(buffer, name)[:filled].copy())
        for name in REPLAY_ARRAYS
        if getattr(buffer, name, None) is not None  # next_observations: not when memory-optimised
    }
    return {"pos": buffer.pos, "full": buffer.full, "arrays": arrays}


def _load_replay(buffer: ReplayBuffer | None, state: dict[str, Any]) -> None:
    assert buffer is not None
    for name, values in state["arrays"].items():
        getattr(buffer, name)[: len(values)] = values.numpy()
    buffer.pos, buffer.full = int(state["pos"]), bool(state["full"])


def _generators(model: BaseAlgorithm) -> dict[str, Any]:
    """Every generator SB3 draws from in training: torch's global one (actions, SAC's
    reparameterised samples), numpy's global one (minibatch indices), the action space's
    (SAC's uniform actions before learning_starts). Python's `random` is seeded by SB3 but never
    drawn from by PPO or SAC."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_global_state(),
        "action_space": generator_state(model.action_space.np_random),
    }
    if model.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(model.device)
    return state


def _load_generators(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    _load_numpy_global_state(state["numpy"])
    model.action_space.np_random.bit_generator.state = state["action_space"]
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], model.device)


# SB3 seeds numpy's legacy global generator and samples its minibatches from it (we never do).
def _numpy_global_state() -> dict[str, Any]:
    state = np.random.get_state(legacy=False)  # noqa: NPY002
    key = torch.from_numpy(state["state"]["key"].astype(np.int64))
    return state | {"state": {"key": key, "pos": int(state["state"]["pos"])}}


def _load_numpy_global_state(state: dict[str, Any]) -> None:
    key = state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state(state | {"state": {"key": key, "pos": state["state"]["pos"]}})  # noqa: NPY002
