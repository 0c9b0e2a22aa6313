"""The settings models: one section per concern, each field with its default and a one-line doc.

Loading (files, environment, precedence) lives in `loader`; the model: docs/MODEL.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_PATH = Path("config/config.yaml")
DEFAULT_BEST_PARAMS_PATH = Path("config/best_params.yaml")
ENV_PREFIX = "RL_"
# simulation settings that replay with relative impact does not use: the replay setting instead
REPLACED_BY_RELATIVE_IMPACT = {
    "liquidity_param": "permanent_impact",
    "temp_impact_param": "temporary_impact",
    "risk_aversion": "urgency",
    "market_volume": "participation",
}
CONVEXITY = (
    "temp_impact_param must exceed liquidity_param / 2 "
    "(otherwise the expected cost is not convex in the schedule)"
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


ObservationFeature = Literal["volume_remaining", "vwap_deviation", "realised_vol", "spread"]


class SimulationSettings(_Section):
    """The market (docs/MODEL.md)."""

    total_shares: float = Field(1000.0, gt=0, description="Q: shares to sell over the episode.")
    time_horizon: int = Field(50, ge=1, le=10_000, description="N: decision steps per episode.")
    start_price: float = Field(100.0, gt=0, description="P0: arrival (decision) price in $.")
    volatility: float = Field(
        0.002, ge=0, lt=0.5, description="sigma: volatility per step, relative to the price."
    )
    drift: float = Field(0.0, gt=-0.1, lt=0.1, description="mu: GBM drift per step, relative.")
    liquidity_param: float = Field(
        0.01, ge=0, description="alpha: permanent impact, $ per share sold."
    )
    temp_impact_param: float = Field(
        0.05, gt=0, description="beta: temporary impact, $ per share per share sold in the step."
    )
    risk_aversion: float = Field(
        0.1, ge=0, description="lambda: inventory penalty coefficient, $ per share held per step."
    )
    action_multipliers: list[float] = Field(
        default_factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0],
        min_length=2,
        max_length=64,
        description="Discrete speeds, multiples of the TWAP rate (see rate_basis).",
    )
    rate_basis: Literal["remaining", "initial"] = Field(
        "remaining",
        description="TWAP rate the multipliers scale: remaining = q_k/(N-k), initial = Q/N.",
    )
    price_model: Literal["gbm", "ou", "jump", "garch", "replay", "book"] = Field(
        "gbm",
        description="Mid-price dynamics: gbm (geometric Brownian), ou (mean-reverting), "
        "jump (GBM with Merton jumps), garch (GARCH(1,1) volatility clustering), replay "
        "(historical bars: see the replay section) or book (a limit-order book: see the book "
        "section).",
    )
    mean_reversion: float = Field(
        math.log(2) / 10,
        gt=0,
        le=5,
        description="kappa: OU reversion speed per step (default: half-life 10 steps).",
    )
    jump_intensity: float = Field(
        0.02, ge=0, le=10, description="lambda_J: jump model, expected jumps per step."
    )
    jump_mean: float = Field(
        -0.005, gt=-1, lt=1, description="m_J: jump model, mean of a jump's log size."
    )
    jump_std: float = Field(
        0.01, ge=0, lt=1, description="s_J: jump model, std of a jump's log size."
    )
    garch_alpha: float = Field(
        0.10, ge=0, description="a_G: garch model, weight of the last squared shock."
    )
    garch_beta: float = Field(
        0.85, ge=0, description="b_G: garch model, persistence of the variance."
    )
    lot_size: float = Field(
        0.0, ge=0, description="Round trades down to multiples of this size; 0 = no rounding."
    )
    max_multiplier: float = Field(
        10.0,
        gt=0,
        le=1000,
        description="Upper end of the continuous action (PPO, SAC), a multiple of the TWAP rate.",
    )
    volume_profile: str = Field(
        "flat",
        min_length=1,
        description="w_k: the market's volume over the session: flat, u_shape (US equities, 26 "
        "bins of 15 min) or the path of a CSV (one column) or YAML list of bin volumes.",
    )
    market_volume: float | None = Field(
        None,
        gt=0,
        description="V: the market's volume over the episode in shares; null = 20 * total_shares.",
    )
    extra_features: list[ObservationFeature] = Field(
        default_factory=list,
        max_length=4,
        description="Optional observation features appended in this order: volume_remaining, "
        "vwap_deviation, realised_vol (spread: historical data only).",
    )
    seed: int = Field(42, ge=0, description="Master seed for training (env, agent, validation).")

    @field_validator("action_multipliers")
    @classmethod
    def _check_multipliers(cls, value: list[float]) -> list[float]:
        if any(not math.isfinite(m) or m < 0 for m in value):
            raise ValueError("every multiplier must be a finite number >= 0")
        if len(set(value)) != len(value):
            raise ValueError("multipliers must be distinct")
        if max(value) <= 0:
            raise ValueError("at least one multiplier must be > 0")
        return value

    @model_validator(mode="after")
    def _check_market(self) -> SimulationSettings:
        if self.lot_size >= self.total_shares:
            raise ValueError("lot_size must be smaller than total_shares")
        if self.price_model in ("replay", "book"):  # replay: replay.impact; book: its section
            return self
        if self.temp_impact_param <= self.liquidity_param / 2:
            raise ValueError(CONVEXITY)
        return self  # which markets are refused: checked where the market is built (market/)

    @field_validator("extra_features")
    @classmethod
    def _check_features(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("extra_features must be distinct")
        return value

    @model_validator(mode="after")
    def _check_replay(self) -> SimulationSettings:
        if "spread" in self.extra_features and self.price_model != "replay":
            raise ValueError(
                "the spread feature needs bid and ask quotes, which only historical data has "
                "(price_model replay); the simulated market can provide volume_remaining, "
                "vwap_deviation, realised_vol"
            )
        if self.price_model == "book" and self.extra_features:
            raise ValueError(
                "the book market has its own six features (time, inventory, price, last move, "
                "spread, imbalance); extra_features must be empty with price_model book"
            )
        if self.price_model == "replay" and self.volume_profile != "flat":
            raise ValueError(
                "volume_profile must be flat with price_model replay: the volume comes from the "
                "bars (their volume column)"
            )
        return self

    @model_validator(mode="after")
    def _check_garch(self) -> SimulationSettings:
        if self.garch_alpha + self.garch_beta >= 1:
            raise ValueError(
                "garch_alpha + garch_beta must be < 1 for a finite unconditional variance "
                f"(got {self.garch_alpha:g} + {self.garch_beta:g} = "
                f"{self.garch_alpha + self.garch_beta:g})"
            )
        return self


class ReplaySettings(_Section):
    """Historical replay (price_model replay): the bar file, its time split, its impact units."""

    path: str | None = Field(
        None,
        description="CSV or Parquet bar file, or builtin:eurusd_1h_2017 (bundled EUR/USD bars).",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Our column names (timestamp, close, volume, bid, ask, ...) -> the file's.",
    )
    timestamp_format: str | None = Field(
        None, description="strftime format of the timestamps (default: ISO 8601 or epoch seconds)."
    )
    timezone: str = Field("UTC", description="Time zone whose calendar dates define sessions.")
    train_fraction: float = Field(0.6, gt=0, lt=1, description="Share of sessions that train.")
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of sessions that validate (the rest test)."
    )
    train_end: dt.date | None = Field(
        None, description="Last training date (inclusive); replaces the fractions."
    )
    validation_end: dt.date | None = Field(
        None, description="Last validation date (inclusive); replaces the fractions."
    )
    stride: int | None = Field(
        None, ge=1, description="Bars between validation/test window starts (default: N)."
    )
    impact: Literal["relative", "absolute"] = Field(
        "relative",
        description="Impact units: relative (participation, daily volatility; any instrument) or "
        "absolute (simulation.liquidity_param, temp_impact_param, risk_aversion in $).",
    )
    participation: float | None = Field(
        None,
        gt=0,
        le=1,
        description="rho: the order's share of the window's volume (relative impact); null = 0.05.",
    )
    temporary_impact: float | None = Field(
        None,
        gt=0,
        le=100,
        description="eta: temporary cost per share / price, per unit of daily volatility and of "
        "the step's participation (relative impact); null = 0.142 rho^-0.4 (Almgren et al. 2005, "
        "linearised at rho).",
    )
    permanent_impact: float | None = Field(
        None,
        ge=0,
        le=100,
        description="gamma: permanent impact per unit of daily volatility and of the day's volume "
        "sold (relative impact); null = 0.314 (Almgren et al. 2005).",
    )
    urgency: float | None = Field(
        None,
        ge=0,
        le=100,
        description="U: the calibrated schedule's kappa N, which sets lambda (relative impact; 0 "
        "= risk neutral); null = 1.",
    )

    @field_validator("participation", "temporary_impact", "permanent_impact", "urgency")
    @classmethod
    def _relative_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("impact") == "absolute":
            raise ValueError(
                "only used with replay.impact: relative (absolute impact is "
                "simulation.liquidity_param, temp_impact_param and risk_aversion in $); remove it "
                "or set replay.impact: relative"
            )
        return value

    @model_validator(mode="after")
    def _check_split(self) -> ReplaySettings:
        if self.train_fraction + self.validation_fraction >= 1:
            raise ValueError("train_fraction + validation_fraction must be < 1 (a test split)")
        if (self.train_end is None) != (self.validation_end is None):
            raise ValueError(
                "give train_end and validation_end together (the dates replace both fractions)"
            )
        if (
            self.train_end is not None
            and self.validation_end is not None
            and self.validation_end < self.train_end
        ):
            raise ValueError("validation_end must not be before train_end")
        return self


AgentKind = Literal["ddqn", "ppo", "sac"]
# The training budget each kind gets when rl.episodes is not set (tuned once, see the README).
DEFAULT_EPISODES: dict[str, int] = {"ddqn": 3000, "ppo": 6000, "sac": 1500}
# PPO and SAC learn from environment steps, so their budget keeps the default market's number of
# steps (episodes x N at N = 50) on any horizon; the Double DQN's stays in episodes.
STEP_BUDGET_AGENTS = ("ppo", "sac")
BUDGET_HORIZON = 50


# The book market (price_model book): its horizon, and the settings each agent trains with there
# unless the user sets them (tuned on the book's defaults; the market: docs/MODEL.md).
# On the book rl.lr_end_fraction also decays PPO's and SAC's learning rates.
BOOK_HORIZON = 60
BOOK_RL_DEFAULTS: dict[str, dict[str, Any]] = {
    "ddqn": {
        "episodes": 10_000,
        "eval_interval": 500,
        "dqn": {"updates_per_step": 2.0, "epsilon_decay": 0.998, "exogenous_expectation": True},
    },
    "ppo": {  # rollouts of two episodes per env; the learning rate decays to a tenth
        "episodes": 30_000,
        "eval_interval": 1000,
        "lr_end_fraction": 0.1,
        "ppo": {"learning_rate": 1e-3, "n_envs": 128, "n_steps": 120, "batch_size": 1024},
    },
    "sac": {"episodes": 3000, "eval_interval": 150},
}


def episodes_for(agent: str, horizon: int) -> int:
    """The default training episodes of an agent kind on a market of `horizon` steps."""
    episodes = DEFAULT_EPISODES[agent]
    if agent in STEP_BUDGET_AGENTS:
        return max(1, math.ceil(episodes * BUDGET_HORIZON / horizon))
    return episodes


def _check_widths_in_range(value: list[int]) -> list[int]:
    if any(h < 1 or h > 4096 for h in value):
        raise ValueError("every hidden size must be between 1 and 4096")
    return value


class PPOSettings(_Section):
    """PPO (Stable-Baselines3) with a continuous speed: its hyperparameters (SB3's names)."""

    n_envs: int = Field(64, ge=1, le=65_536, description="Episodes collected in lockstep.")
    n_steps: int = Field(
        64, ge=2, le=65_536, description="Vectorised steps per rollout (n_steps x n_envs samples)."
    )
    batch_size: int = Field(512, ge=2, le=65_536, description="Minibatch size of the update.")
    n_epochs: int = Field(10, ge=1, le=100, description="Passes over each rollout.")
    learning_rate: float = Field(3e-4, gt=0, lt=1, description="Adam learning rate (constant).")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (rl.gamma discounts).")
    clip_range: float = Field(0.2, gt=0, le=1, description="Policy-ratio clipping.")
    ent_coef: float = Field(0.0, ge=0, le=1, description="Entropy bonus coefficient.")
    vf_coef: float = Field(0.5, gt=0, le=10, description="Value-loss coefficient.")
    max_grad_norm: float = Field(0.5, gt=0, description="Max global gradient norm.")
    log_std_init: float = Field(
        -2.0, ge=-10, le=2, description="Initial log std of the Gaussian action (in [-1, 1] units)."
    )
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        max_length=8,
        description="Hidden widths of the policy and of the value MLP (tanh).",
    )

    _check_hidden = field_validator("hidden_sizes")(_check_widths_in_range)


class SACSettings(_Section):
    """SAC (Stable-Baselines3) with a continuous speed: its hyperparameters (SB3's names)."""

    n_envs: int = Field(32, ge=1, le=65_536, description="Episodes collected in lockstep.")
    gradient_steps: int = Field(
        4, ge=1, le=256, description="Gradient steps after each vectorised env step."
    )
    batch_size: int = Field(
        1024,
        ge=1,
        le=65_536,
        description="Replay minibatch size (a gradient step at 1024 costs about 1.1x one at 256).",
    )
    learning_rate: float = Field(1e-3, gt=0, lt=1, description="Adam learning rate (constant).")
    buffer_size: int = Field(
        100_000, ge=1, le=10_000_000, description="Replay buffer capacity (transitions)."
    )
    learning_starts: int = Field(
        100, ge=0, description="Transitions collected before the first gradient step."
    )
    tau: float = Field(
        0.002,
        gt=0,
        le=1,
        description="Soft update rate of the target critics (slow: the actor follows the "
        "critic's argmax, so the critic's jitter is the policy's).",
    )
    ent_coef: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Entropy coefficient: its start value when auto_entropy, else fixed.",
    )
    auto_entropy: bool = Field(
        True, description="Learn the entropy coefficient towards target_entropy."
    )
    target_entropy: float = Field(
        -3.0,
        ge=-20,
        le=1,
        description="Entropy the learned coefficient aims at, in [-1, 1] action units: a "
        "Gaussian's is 1.42 + ln(std), so -3 is a std of 0.012 (0.024x the static pace with "
        "max_relative_speed 4; SB3's default -1: 0.18x).",
    )
    max_relative_speed: float | None = Field(
        4.0,
        gt=0,
        le=1000,
        description="SAC's action covers speeds from 0 to this multiple of the static "
        "schedule's speed (TWAP's pace on a flat profile), at most simulation.max_multiplier; "
        "null: the whole [0, max_multiplier] (SAC before issue 25, which misses small optima).",
    )
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        max_length=8,
        description="Hidden widths of the actor and of each critic MLP (ReLU).",
    )

    _check_hidden = field_validator("hidden_sizes")(_check_widths_in_range)


class DQNSettings(_Section):
    """The Double DQN (discrete speeds): its network, replay, exploration and update schedule."""

    lr: float = Field(1e-3, gt=0, lt=1, description="Adam learning rate at the start.")
    batch_size: int = Field(512, ge=1, le=65_536, description="Replay minibatch size.")
    epsilon_start: float = Field(1.0, ge=0, le=1, description="Initial exploration rate.")
    epsilon_end: float = Field(0.02, ge=0, le=1, description="Final exploration rate.")
    epsilon_decay: float = Field(
        0.995, gt=0, le=1, description="Multiplicative epsilon decay per training episode."
    )
    target_update: int = Field(
        20, ge=1, description="Gradient updates between hard target-network copies."
    )
    memory_size: int = Field(100_000, ge=1, description="Replay buffer capacity (transitions).")
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [128, 128],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the Q-network MLP.",
    )
    n_step: int = Field(
        1, ge=1, le=64, description="Steps of reward summed before bootstrapping (n-step returns)."
    )
    unaffected_price_input: bool = Field(
        True,
        description="Also feed the net (S - P0 + alpha (Q - q)) / (P0 sigma), derived from obs.",
    )
    dueling: bool = Field(
        False, description="Dueling head: Q = V(s) + A(s, a) - mean A (Wang et al. 2016)."
    )
    exogenous_expectation: bool = Field(
        False,
        description="Book market only (its default there: true): bootstrap from the next "
        "state's value averaged over the next spread and imbalance by the market's transition "
        "matrices, not read at the ones drawn (same mean, less noise; needs n_step 1).",
    )
    n_envs: int = Field(
        32, ge=1, le=65_536, description="Episodes collected in lockstep (vectorised env)."
    )
    updates_per_step: float = Field(
        0.5,
        gt=0,
        le=64,
        description="Replay ratio: gradient updates per vectorised env step (fractions allowed).",
    )
    learning_starts: int = Field(
        2000, ge=0, description="Transitions collected before the first gradient update."
    )
    grad_clip: float = Field(10.0, gt=0, description="Max global gradient norm.")

    _check_hidden = field_validator("hidden_sizes")(_check_widths_in_range)

    @model_validator(mode="after")
    def _check_epsilon(self) -> DQNSettings:
        if self.epsilon_end > self.epsilon_start:
            raise ValueError("epsilon_end must be <= epsilon_start")
        if self.batch_size > self.memory_size:
            raise ValueError("batch_size must be <= memory_size")
        return self


# The original project's flat rl.<name> of each Double DQN setting, now rl.dqn.<name>.
DQN_FIELDS = tuple(DQNSettings.model_fields)


def saved_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """Settings saved by an earlier version (a checkpoint's, a resumable run's), as this version
    reads them to act as they did then. A SAC saved before it had a speed map (issue 25) acted
    on the market's whole box, which rl.sac.max_relative_speed None reproduces; a Double DQN
    saved before the book market's exogenous expectation bootstrapped from the sampled next
    state (rl.dqn.exogenous_expectation false)."""
    out = dict(data)
    rl = out.get("rl")
    if not isinstance(rl, Mapping):
        return out
    sac, dqn, agent = rl.get("sac"), rl.get("dqn"), rl.get("agent")
    if agent == "sac" and isinstance(sac, Mapping) and "max_relative_speed" not in sac:
        rl = {**rl, "sac": {**sac, "max_relative_speed": None}}
    if isinstance(dqn, Mapping) and "exogenous_expectation" not in dqn:
        rl = {**rl, "dqn": {**dqn, "exogenous_expectation": False}}
    out["rl"] = rl
    return out


def move_flat_dqn(
    rl: Mapping[str, Any], from_env: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """An rl mapping with the flat Double DQN names moved into its dqn section, and the names
    moved. Giving a name both ways is an error naming both. `from_env`: values are the text of
    RL_ variables, and a list is decoded from JSON as pydantic-settings does for a known name."""
    flat = [name for name in rl if name in DQN_FIELDS]
    dqn = rl.get("dqn") or {}
    if not flat or not isinstance(dqn, Mapping):  # a dqn that is no mapping: its own error
        return dict(rl), []
    both = [name for name in flat if name in dqn]
    if both:
        pairs = ", ".join(f"rl.{name} and rl.dqn.{name}" for name in both)
        raise ValueError(f"{pairs} both given; keep only rl.dqn.<name> (rl.<name> is the old name)")
    moved = {key: value for key, value in rl.items() if key not in flat}
    decode = _env_list if from_env else lambda _, value: value
    moved["dqn"] = {**dqn, **{name: decode(name, rl[name]) for name in flat}}
    return moved, flat


def _env_list(name: str, value: Any) -> Any:
    """The text of an RL_ variable for a list-valued dqn setting, decoded from JSON."""
    is_list = get_origin(DQNSettings.model_fields[name].annotation) is list
    if not is_list or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # reported by the setting's own validation


class _FlatDQNNames(PydanticBaseSettingsSource):
    """A source whose flat rl Double DQN names are read as rl.dqn's (see move_flat_dqn)."""

    def __init__(self, source: PydanticBaseSettingsSource, from_env: bool) -> None:
        super().__init__(source.settings_cls)
        self.source, self.from_env = source, from_env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self.source()
        rl = values.get("rl")
        if not isinstance(rl, Mapping):
            return values
        return {**values, "rl": move_flat_dqn(rl, self.from_env)[0]}


class RLSettings(_Section):
    """The agent and its training loop; each agent's own hyperparameters in dqn, ppo and sac."""

    agent: AgentKind = Field(
        "ddqn",
        description="The agent trained: ddqn (discrete speeds), ppo or sac (continuous speed).",
    )
    episodes: int = Field(
        3000,
        ge=1,
        description="Training episodes (summed over parallel envs); when unset, the agent's own "
        "budget: ddqn 3000, ppo 6000, sac 1500.",
    )
    gamma: float = Field(
        1.0, gt=0, le=1, description="Discount; 1 optimises the undiscounted cost (finite horizon)."
    )
    lr_end_fraction: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Learning rate at the end, as a fraction of the start's (linear decay; the "
        "Double DQN's, and on the book market PPO's and SAC's too).",
    )
    reward_scale: float = Field(
        0.3, gt=0, description="Rewards (bps) are multiplied by this inside the learner only."
    )
    reward_shaping: bool = Field(
        True,
        description="Learner-side potential shaping by the value of the market's static "
        "cost-minimising schedule (TWAP on a flat profile; optimal policy unchanged).",
    )
    price_control_variate: bool = Field(
        True,
        description="Learner-side: subtract the zero-mean price surprise on the held inventory.",
    )
    eval_interval: int = Field(
        50, ge=1, description="Training episodes between greedy validation evaluations."
    )
    validation_episodes: int = Field(
        500,
        ge=1,
        description="Antithetic pairs of validation episodes (own seed, not the test set).",
    )
    keep_best: bool = Field(
        True, description="Keep the weights with the best validation cost, not the last ones."
    )
    checkpoint_interval: int = Field(
        1000,
        ge=1,
        description="Training episodes between resumable checkpoints (resume.pt in the run dir).",
    )
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="Torch device.")
    dqn: DQNSettings = Field(default_factory=DQNSettings)
    ppo: PPOSettings = Field(default_factory=PPOSettings)
    sac: SACSettings = Field(default_factory=SACSettings)

    @model_validator(mode="before")
    @classmethod
    def _flat_dqn_names(cls, data: object) -> object:
        """The original project's flat Double DQN names (rl.lr) read as rl.dqn's."""
        return move_flat_dqn(data)[0] if isinstance(data, Mapping) else data

    @model_validator(mode="before")
    @classmethod
    def _agent_budget(cls, data: object) -> object:
        """An unset training budget is the chosen agent's own."""
        if isinstance(data, dict) and data.get("episodes") is None:
            agent = data.get("agent", "ddqn")
            if agent in DEFAULT_EPISODES:
                return {**data, "episodes": DEFAULT_EPISODES[agent]}
        return data


class EvaluationSettings(_Section):
    """The final test: every strategy on the same shared-shock episodes."""

    episodes: int = Field(1000, ge=2, le=1_000_000, description="Test episodes.")
    antithetic: bool = Field(
        True,
        description="Draw test shocks in antithetic pairs (Z, -Z): far less noise in mean costs.",
    )
    seed: int = Field(
        20240601, ge=0, description="Seed of the test shocks (shared by all strategies and runs)."
    )

    @model_validator(mode="after")
    def _check_even(self) -> EvaluationSettings:
        if self.antithetic and self.episodes % 2:
            raise ValueError("episodes must be even when antithetic is true (shocks come in pairs)")
        return self


class OptimizationSettings(_Section):
    """Hyperparameter search (Optuna): search space, budget, storage, pruning, workers."""

    study_name: str = Field("rl-order-execution", min_length=1, description="Optuna study name.")
    study_name_includes_market_hash: bool = Field(
        True,
        description="Append a short hash of the simulation settings (seed excluded) to the study "
        "name, so studies of different markets never mix.",
    )
    storage: str = Field(
        "sqlite:///db/optuna_study.db",
        min_length=1,
        description="Optuna RDB storage URL (SQLAlchemy), e.g. postgresql+psycopg2://user@host/db.",
    )
    n_trials: int = Field(
        50, ge=1, le=100_000, description="Study-wide total of complete or pruned trials."
    )
    tuning_episodes: int = Field(1500, ge=1, description="Training episodes per trial.")
    report_interval: int = Field(
        50,
        ge=1,
        description="Episodes between validations in a trial (its rl.eval_interval); pruner step.",
    )
    validation_episodes: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Validation episodes per trial (rl.validation_episodes).",
    )
    seed: int = Field(0, ge=0, description="TPE sampler seed; each worker derives its own from it.")
    lr_min: float = Field(1e-4, gt=0, lt=1, description="Lower bound of the learning-rate search.")
    lr_max: float = Field(3e-3, gt=0, lt=1, description="Upper bound of the learning-rate search.")
    batch_sizes: list[int] = Field(
        default_factory=lambda: [64, 128, 256, 512],
        min_length=1,
        description="Candidate minibatch sizes.",
    )
    search_gamma: bool = Field(
        False,
        description="Also search the discount (off: gamma stays rl.gamma; 1 is right for a finite "
        "horizon whose cost is undiscounted).",
    )
    gamma_min: float = Field(0.95, gt=0, le=1, description="Lower bound of the discount search.")
    gamma_max: float = Field(1.0, gt=0, le=1, description="Upper bound of the discount search.")
    hidden_widths: list[int] = Field(
        default_factory=lambda: [32, 64, 128],
        min_length=1,
        description="Candidate hidden-layer widths (every layer gets the same width).",
    )
    hidden_layers: int = Field(2, ge=1, le=8, description="Hidden layers of every tried network.")
    target_update_min: int = Field(
        50, ge=1, description="Lower bound of the target-network copy interval (updates)."
    )
    target_update_max: int = Field(
        1000, ge=1, description="Upper bound of the target-network copy interval (updates)."
    )
    epsilon_decay_min: float = Field(
        0.99, gt=0, le=1, description="Lower bound of the per-episode epsilon decay."
    )
    epsilon_decay_max: float = Field(
        0.999, gt=0, le=1, description="Upper bound of the per-episode epsilon decay."
    )
    updates_per_step_min: float = Field(
        0.25, gt=0, le=64, description="Lower bound of the replay ratio (updates per env step)."
    )
    updates_per_step_max: float = Field(
        4.0, gt=0, le=64, description="Upper bound of the replay ratio (updates per env step)."
    )
    n_envs_choices: list[int] = Field(
        default_factory=lambda: [8, 16, 32, 64],
        min_length=1,
        description="Candidate numbers of episodes collected in lockstep.",
    )
    pruning: bool = Field(True, description="Stop unpromising trials early (median pruner).")
    pruner_startup_trials: int = Field(
        5, ge=0, description="Finished trials before the pruner may stop any trial."
    )
    pruner_warmup_episodes: int = Field(
        200, ge=0, description="Training episodes of a trial before it may be pruned."
    )
    heartbeat_interval: int = Field(
        30, ge=1, description="Seconds between a running trial's heartbeats in the storage."
    )
    grace_period: int = Field(
        120,
        ge=2,
        description="Seconds without a heartbeat before a running trial counts as dead (retried).",
    )
    max_retry: int = Field(2, ge=0, le=100, description="Retries of a trial whose worker died.")
    max_consecutive_failures: int = Field(
        5, ge=1, description="A worker stops after this many failed trials in a row."
    )

    @field_validator("batch_sizes", "n_envs_choices")
    @classmethod
    def _check_counts(cls, value: list[int]) -> list[int]:
        if any(v < 1 or v > 65_536 for v in value):
            raise ValueError("every value must be between 1 and 65536")
        if len(set(value)) != len(value):
            raise ValueError("values must be distinct")
        return value

    @field_validator("hidden_widths")
    @classmethod
    def _check_widths(cls, value: list[int]) -> list[int]:
        if any(h < 1 or h > 4096 for h in value):
            raise ValueError("every hidden width must be between 1 and 4096")
        if len(set(value)) != len(value):
            raise ValueError("widths must be distinct")
        return value

    @model_validator(mode="after")
    def _check_ranges(self) -> OptimizationSettings:
        for name in ("lr", "gamma", "target_update", "epsilon_decay", "updates_per_step"):
            if getattr(self, f"{name}_min") > getattr(self, f"{name}_max"):
                raise ValueError(f"{name}_min must be <= {name}_max")
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError("grace_period must exceed heartbeat_interval")
        if "://" not in self.storage:
            raise ValueError("storage must be a database URL such as sqlite:///db/optuna_study.db")
        return self


class LoggingSettings(_Section):
    """Console, TensorBoard and output locations."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Console log level of the toolkit (Optuna's is set to match)."
    )
    tensorboard: bool = Field(
        True, description="Write TensorBoard event files into the run folder."
    )
    progress: bool = Field(True, description="Show Rich progress bars.")
    output_root: Path = Field(Path("output/runs"), description="Folder that holds run folders.")
    log_interval: int = Field(
        10, ge=1, description="Vectorised steps between TensorBoard scalar writes of the loss."
    )


class Settings(BaseSettings):
    """All settings of a run."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        nested_model_default_partial_update=True,
        env_parse_none_str="null",
    )

    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    rl: RLSettings = Field(default_factory=RLSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    optimization: OptimizationSettings = Field(default_factory=OptimizationSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    book: dict[str, Any] = Field(
        default_factory=dict,
        description="The limit-order book market (price_model book): tick, spreads, imbalance "
        "levels, fills, impact, book_actions, ...; validated when the market is built "
        '(docs/MODEL.md, "Limit-order book market"); empty = its defaults.',
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Files are added by `load_settings`, which knows their paths.
        return _FlatDQNNames(init_settings, False), _FlatDQNNames(env_settings, True)

    @model_validator(mode="after")
    def _check_absolute_replay(self) -> Settings:
        """Replayed bars in $ units need the simulated market's convexity (relative impact has
        its own, checked with the bars)."""
        sim = self.simulation
        absolute = sim.price_model == "replay" and self.replay.impact == "absolute"
        if absolute and sim.temp_impact_param <= sim.liquidity_param / 2:
            raise ValueError(f"simulation.{CONVEXITY} with replay.impact: absolute")
        return self

    def unused_by_replay(self, given: Iterable[str]) -> str | None:
        """A note naming the simulation settings in `given` (dotted names the user set) that
        replay with relative impact does not use, and the replay setting that replaces each."""
        if self.simulation.price_model != "replay" or self.replay.impact != "relative":
            return None
        unused = [name for name in REPLACED_BY_RELATIVE_IMPACT if f"simulation.{name}" in given]
        if not unused:
            return None
        pairs = ", ".join(
            f"simulation.{name} (replaced by replay.{REPLACED_BY_RELATIVE_IMPACT[name]})"
            for name in unused
        )
        return (
            f"not used by replay with relative impact: {pairs}; replay.impact: absolute uses them"
        )

    @model_validator(mode="before")
    @classmethod
    def _step_budget(cls, data: object) -> object:
        """An unset budget of a step-based agent follows the market's horizon."""
        if not isinstance(data, dict) or not isinstance(data.get("rl"), dict):
            return data
        rl = data["rl"]
        agent = rl.get("agent", "ddqn")
        if rl.get("episodes") is not None or agent not in STEP_BUDGET_AGENTS:
            return data
        sim = data.get("simulation")
        horizon = sim.get("time_horizon") if isinstance(sim, dict) else None
        if horizon is None:
            horizon = BUDGET_HORIZON if sim is None else getattr(sim, "time_horizon", 50)
        try:
            episodes = episodes_for(agent, int(horizon))
        except (TypeError, ValueError):  # an invalid horizon is reported by its own field
            return data
        return {**data, "rl": {**rl, "episodes": episodes}}

    @model_validator(mode="before")
    @classmethod
    def _book_market(cls, data: object) -> object:
        """On the book market N defaults to 60 and every rl setting left unset takes the agent's
        book default (BOOK_RL_DEFAULTS). Pydantic runs `before` validators last defined first,
        so the budget set here is one `_step_budget` leaves alone."""
        if not isinstance(data, dict):
            return data
        sim, rl = data.get("simulation"), data.get("rl") or {}
        if (
            not isinstance(sim, dict)
            or sim.get("price_model") != "book"
            or not isinstance(rl, dict)
        ):
            return data
        merged, _ = move_flat_dqn(rl)  # the book's dqn defaults fill the section, not rl
        for key, value in BOOK_RL_DEFAULTS.get(rl.get("agent", "ddqn"), {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key, {}), dict):
                merged[key] = {**value, **merged.get(key, {})}
            elif merged.get(key) is None:
                merged[key] = value
        return {**data, "simulation": {"time_horizon": BOOK_HORIZON, **sim}, "rl": merged}

    @model_validator(mode="after")
    def _check_exogenous_expectation(self) -> Settings:
        """Across sections, so its message starts with the setting it names (the loader shows
        it as that setting's)."""
        dqn = self.rl.dqn
        if not dqn.exogenous_expectation:
            return self
        if self.simulation.price_model != "book":
            raise ValueError(
                "rl.dqn.exogenous_expectation: true averages over the book market's spread and "
                f"imbalance chains; it needs price_model book (here {self.simulation.price_model})"
            )
        if dqn.n_step > 1:
            raise ValueError(
                f"rl.dqn.n_step: {dqn.n_step} with rl.dqn.exogenous_expectation (true by default "
                "on the book market), which needs one-step targets; use n_step 1, or set "
                "rl.dqn.exogenous_expectation false for n-step targets"
            )
        return self
