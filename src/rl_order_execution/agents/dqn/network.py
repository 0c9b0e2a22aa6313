"""The Q-network: an MLP over the observation, optionally dueling, with derived inputs."""

from __future__ import annotations

import torch
from torch import nn

from rl_order_execution.agents.features import StaticSpeed, uses_static_speed
from rl_order_execution.config import RLSettings
from rl_order_execution.market import MarketParams


class UnaffectedPrice(nn.Module):
    """Appends one input derived from the observation: the mid price's deviation from its
    impact-adjusted level, (S - P0 + alpha (Q - q)) / (P0 sigma).

    It is a fixed linear function of two observed features (price vs arrival, inventory), but one
    that an MLP learns only slowly; mean reversion acts on exactly this quantity.
    """

    def __init__(self, price_scale: float, impact_scale: float) -> None:
        super().__init__()
        # price_scale = level_scale / move_scale, impact_scale = alpha Q / move_scale
        self.register_buffer("scales", torch.tensor([price_scale, impact_scale]))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        scales = self.get_buffer("scales")
        deviation = obs[:, 2] * scales[0] + (1.0 - obs[:, 1]) * scales[1]
        return torch.cat([obs, deviation.unsqueeze(1)], dim=1)


class QNetwork(nn.Module):
    """MLP: observation (B, obs_dim) -> Q-values (B, n_actions).

    dueling: Q = V(s) + A(s, a) - mean_a A(s, a) (Wang et al. 2016), so the small differences
    between actions are learned apart from the state's value. `features` and `static_speed`
    (under a volume profile, `agents.features`) derive extra inputs.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden_sizes: list[int],
        dueling: bool = False,
        features: UnaffectedPrice | None = None,
        static_speed: StaticSpeed | None = None,
    ) -> None:
        super().__init__()
        self.features = features
        self.static_speed = static_speed
        layers: list[nn.Module] = []
        width = (
            obs_dim + (1 if features is not None else 0) + (1 if static_speed is not None else 0)
        )
        for h in hidden_sizes:
            layers += [
                nn.Linear(width, h),
                nn.ReLU(inplace=True),
            ]  # in place: half the memory traffic
            width = h
        self.dueling = dueling
        self.n_actions = n_actions
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_actions + (1 if dueling else 0))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.features is not None:
            obs = self.features(obs)
        if self.static_speed is not None:
            obs = self.static_speed(obs)
        out: torch.Tensor = self.head(self.body(obs))
        if self.dueling:
            value, advantage = out[:, :1], out[:, 1:]
            out = value + advantage - advantage.mean(dim=1, keepdim=True)
        return out


def build_network(p: MarketParams, rl: RLSettings) -> QNetwork:
    """The Q-network for a market and the agent settings (also used to load checkpoints); its
    input is the market's observation, extra features included."""
    features, dqn = None, rl.dqn
    if dqn.unaffected_price_input:
        features = UnaffectedPrice(p.level_scale / p.move_scale, p.alpha * p.Q / p.move_scale)
    static_speed = StaticSpeed(p) if uses_static_speed(p) else None
    return QNetwork(p.obs_dim, p.n_actions, dqn.hidden_sizes, dqn.dueling, features, static_speed)
