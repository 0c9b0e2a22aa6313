"""Experience replay: a preallocated circular buffer of whole vectorised steps, and the n-step
returns that feed it."""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, obs_dim)
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, obs_dim)
    terminated: torch.Tensor  # (B,) 1.0 where the episode ended: no bootstrap
    discounts: torch.Tensor  # (B,) gamma^m for an m-step return


class ReplayBuffer:
    """Circular buffer of preallocated numpy arrays; adds whole vectorised steps at once."""

    def __init__(self, capacity: int, obs_dim: int, device: torch.device) -> None:
        self.capacity = capacity
        self.device = device
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        discounts: np.ndarray | float,
    ) -> None:
        n = len(actions)
        discounts = np.broadcast_to(np.asarray(discounts, dtype=np.float32), (n,))
        if n > self.capacity:  # keep only the newest rows
            obs, actions, rewards, next_obs, terminated, discounts = (
                x[-self.capacity :]
                for x in (obs, actions, rewards, next_obs, terminated, discounts)
            )
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.next_obs[idx] = next_obs
        self.terminated[idx] = terminated
        self.discounts[idx] = discounts
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated", "discounts")

    def state_dict(self) -> dict[str, Any]:
        """The filled rows and the circular index (while not full, pos == size)."""
        rows = {
            name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in self.ARRAYS
        }
        return rows | {"pos": self.pos, "size": self.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.pos = int(state["size"]), int(state["pos"])
        for name in self.ARRAYS:
            getattr(self, name)[: self.size] = state[name].numpy()

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        idx = rng.integers(0, self.size, size=batch_size)

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x[idx]).to(self.device)

        return Batch(
            t(self.obs),
            t(self.actions),
            t(self.rewards),
            t(self.next_obs),
            t(self.terminated),
            t(self.discounts),
        )


class NStepReturns:
    """Turns one-step transitions of B lockstep envs into n-step ones, oldest first.

    A transition leaves the window n steps after it entered, carrying sum_l gamma^l r_l up to the
    episode's end, the state n steps later (or the final one) and the discount gamma^m to bootstrap.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.window: deque[tuple[np.ndarray, ...]] = deque(maxlen=n)

    def state_dict(self) -> list[list[torch.Tensor]]:
        """The transitions still in the window, oldest first."""
        return [[torch.from_numpy(np.array(x, copy=True)) for x in t] for t in self.window]

    def load_state_dict(self, window: list[list[torch.Tensor]]) -> None:
        self.window.clear()
        self.window.extend(tuple(x.numpy() for x in t) for t in window)

    def push(self, *transition: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """transition = (obs, actions, rewards, next_obs, terminated); returns the n-step one."""
        self.window.append(transition)
        if len(self.window) < self.n:
            return None
        obs, actions = self.window[0][0], self.window[0][1]
        alive = np.ones(len(actions), dtype=np.bool_)
        total = np.zeros(len(actions))
        discount = np.ones(len(actions))
        last_next = self.window[0][3]
        for _, _, reward, next_obs, terminated in self.window:
            total += np.where(alive, discount * reward, 0.0)
            last_next = np.where(alive[:, None], next_obs, last_next)
            discount = np.where(alive, discount * self.gamma, discount)
            alive = alive & ~terminated
        return obs, actions, total.astype(np.float32), last_next, ~alive, discount
