"""Inputs a learner derives from the observation: fixed functions of observed features that a
network would otherwise have to learn.

`static_speed`: the speed (a multiple of the market's base rate) at which the static schedule of
`agents.shaping` would trade now, n = q * f_k with f_k its share of what is left for step k. Under
an intraday volume profile it tells the policy how liquid the step it trades in is, relative to
the steps left (a staircase in time that an MLP of the time remaining fits only roughly). On a flat
profile it is 1 at every step, so it is not added there (the learner's input is the observation).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rl_order_execution.agents.shaping import static_fractions
from rl_order_execution.market import FloatArray, MarketParams


def uses_static_speed(p: MarketParams) -> bool:
    """The static speed is an input wherever the profile is not flat."""
    return not p.is_flat


@lru_cache(maxsize=16)
def static_share_table(p: MarketParams) -> FloatArray:
    """(N+1,): row m = the static schedule's share of the order for the step with m steps left
    (row 0, after the end, is 0)."""
    out = np.zeros(p.N + 1)
    for m in range(1, p.N + 1):
        out[m] = static_fractions(p, p.N - m)[0]
    return out


def static_speed(p: MarketParams, obs: np.ndarray) -> FloatArray:
    """(B,): the static schedule's speed in each observed state, as a multiple of the base rate."""
    m = np.clip(np.rint(obs[:, 0].astype(np.float64) * p.N), 0, p.N).astype(np.int64)
    share = static_share_table(p)[m]
    if p.rate_basis == "remaining":  # n / (q / m) = share * m
        out: FloatArray = share * m
    else:  # n / (Q / N) = share * (q / Q) * N
        out = share * obs[:, 1].astype(np.float64) * p.N
    return out


def learner_obs(p: MarketParams, obs: np.ndarray) -> np.ndarray:
    """The observation as the learner sees it: the static speed appended where it is used."""
    if not uses_static_speed(p):
        return obs
    extra = static_speed(p, obs).astype(np.float32)[:, None]
    return np.concatenate([obs, extra], axis=1)


def learner_obs_space(p: MarketParams, space: spaces.Space[Any]) -> spaces.Space[Any]:
    """The env's observation space (a Box), widened by the inputs `learner_obs` appends."""
    if not uses_static_speed(p):
        return space
    assert isinstance(space, spaces.Box)
    low = np.append(space.low, 0.0).astype(np.float32)
    high = np.append(space.high, np.float32(np.inf)).astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


class StaticSpeed(nn.Module):
    """`static_speed` inside a torch network: appends one input column to a batch of
    observations. Its table is recomputed from the market, never stored in a checkpoint."""

    extra = 1

    def __init__(self, p: MarketParams) -> None:
        super().__init__()
        self.N = p.N
        self.remaining = p.rate_basis == "remaining"
        table = torch.tensor(static_share_table(p), dtype=torch.float32)
        self.register_buffer("table", table, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        m = torch.round(obs[:, 0] * self.N).clamp(0, self.N)
        share = self.get_buffer("table")[m.long()]
        scale = m if self.remaining else obs[:, 1] * self.N
        return torch.cat([obs, (share * scale).unsqueeze(1)], dim=1)
