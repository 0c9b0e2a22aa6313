from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rl_order_execution.config import (
    LoggingSettings,
    Settings,
    SettingsError,
    SimulationSettings,
    configure_logging,
    flatten,
    load_settings,
    value_sources,
)
from rl_order_execution.market import MarketParams


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_cli_env_best_params_config_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _write(
        tmp_path / "config.yaml",
        "simulation:\n  risk_aversion: 0.2\n  drift: 0.001\n  volatility: 0.003\n"
        "rl:\n  dqn:\n    lr: 0.01\n",
    )
    best = _write(tmp_path / "best.yaml", "simulation:\n  drift: 0.002\n  volatility: 0.004\n")
    monkeypatch.setenv("RL_SIMULATION__VOLATILITY", "0.005")
    monkeypatch.setenv("RL_RL__EPISODES", "77")
    settings, applied = load_settings({"rl.episodes": 5}, config, best)
    assert settings.simulation.risk_aversion == 0.2  # config file
    assert settings.simulation.drift == 0.002  # best_params beats config
    assert settings.simulation.volatility == 0.005  # env beats both files
    assert settings.rl.episodes == 5  # CLI beats env
    assert settings.rl.dqn.lr == 0.01
    assert settings.simulation.total_shares == 1000  # default
    # an old-format best_params file (no tuned: entries, no agent, no market): applied as before
    assert [kind for _, kind in applied] == ["tuned", "file"]
    origin = value_sources({"rl.episodes": 5}, config, best)
    assert origin["rl.episodes"] == "cli"
    assert origin["simulation.volatility"] == "env"
    assert origin["simulation.drift"].startswith("best-params")
    assert origin["simulation.risk_aversion"].startswith("config")
    assert "simulation.total_shares" not in origin


def test_env_variable_alone_overrides_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__RISK_AVERSION", "0.7")
    monkeypatch.setenv("rl_rl__dqn__hidden_sizes", "[16, 8]")
    settings, _ = load_settings(None, None, None)
    assert settings.simulation.risk_aversion == 0.7
    assert settings.rl.dqn.hidden_sizes == [16, 8]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("simulation:\n  volatilty: 0.1\n", "simulation.volatilty: unknown setting"),
        ("simulation:\n  total_shares: -5\n", "simulation.total_shares"),
        ("rl:\n  epsilon_start: 0.1\n  epsilon_end: 0.5\n", "epsilon_end must be <= epsilon_start"),
        (
            "rl:\n  dqn:\n    epsilon_start: 0.1\n    epsilon_end: 0.5\n",
            "rl.dqn: epsilon_end must be <= epsilon_start",
        ),
        ("simulation:\n  garch_alpha: 0.2\n", "garch_alpha \\+ garch_beta must be < 1"),
        ("simulation:\n  jump_std: -0.1\n", "simulation.jump_std"),
        ("simulation: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("simulation:\n  price_model: heston\n", "simulation.price_model"),
    ],
)
def test_bad_config_is_a_clear_settings_error(tmp_path: Path, text: str, message: str) -> None:
    config = _write(tmp_path / "c.yaml", text)
    with pytest.raises(SettingsError, match=message):
        load_settings(None, config, None)


def test_a_nonsense_market_is_refused_where_the_market_is_built(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "simulation:\n  start_price: 10\n")
    settings, _ = load_settings(None, config, None)
    with pytest.raises(SettingsError, match="would leave the mid at 0 by permanent impact alone"):
        MarketParams.of(settings)


def test_misspelt_env_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__RISK_AVERSON", "0.7")
    with pytest.raises(SettingsError, match="did you mean RL_SIMULATION__RISK_AVERSION"):
        load_settings(None, None, None)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(None, tmp_path / "nope.yaml", None, require_config=True)


def _market(**changes: Any) -> MarketParams:
    """The market of these settings: where a nonsense market is refused (README, "Which markets
    are refused"); the settings' own checks (types, ranges, convexity) come first."""
    return MarketParams.from_settings(
        SimulationSettings(total_shares=1000, start_price=100, **changes)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"liquidity_param": 0.0999, "temp_impact_param": 0.05},
        {"liquidity_param": 0.01, "temp_impact_param": 0.0999},
        {"liquidity_param": 0.0999, "temp_impact_param": 0.0999},
    ],
)
def test_market_just_inside_the_price_bound_loads(changes: dict[str, float]) -> None:
    _market(**changes)  # max(alpha, beta) * Q = 99.9 < P0 = 100


def test_only_the_permanent_impact_bound_remains_of_the_old_price_bound() -> None:
    """max(alpha, beta) Q < P0 was the second edition's rule; now alpha Q >= P0 is refused and a
    beta_k that prices only an extreme trade below zero is not (README, "Which markets are
    refused")."""
    with pytest.raises(SettingsError, match=r"liquidity_param 0\.1 x total_shares 1000 >= "):
        _market(liquidity_param=0.1, temp_impact_param=0.06)
    _market(liquidity_param=0.01, temp_impact_param=0.1)  # 100 <= 100 before
    _market(liquidity_param=0.01, temp_impact_param=0.12)  # 100 <= 120 before


def test_alpha_at_twice_beta_still_fails_the_convexity_check() -> None:
    with pytest.raises(ValidationError, match="not convex"):
        _market(liquidity_param=0.1, temp_impact_param=0.05)


def test_reported_market_now_loads(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "config.yaml", "simulation:\n  liquidity_param: 0.08\n  risk_aversion: 0.05\n"
    )
    settings, _ = load_settings(None, config, None)
    assert settings.simulation.liquidity_param == 0.08
    assert settings.simulation.risk_aversion == 0.05


def test_second_edition_defaults() -> None:
    sim = SimulationSettings()
    assert sim.price_model == "gbm"
    assert (sim.jump_intensity, sim.jump_mean, sim.jump_std) == (0.02, -0.005, 0.01)
    assert (sim.garch_alpha, sim.garch_beta) == (0.10, 0.85)
    assert "simulation.notional" not in flatten(Settings())


@pytest.mark.parametrize("model", ["gbm", "ou", "jump", "garch"])
def test_every_price_model_name_loads(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__PRICE_MODEL", model)
    settings, _ = load_settings(None, None, None)
    assert settings.simulation.price_model == model


def test_garch_sum_just_below_one_loads() -> None:
    assert SimulationSettings(garch_alpha=0.1, garch_beta=0.8999).garch_beta == 0.8999
    with pytest.raises(ValidationError, match="finite unconditional variance"):
        SimulationSettings(garch_alpha=0.1, garch_beta=0.9)


@pytest.fixture
def toolkit_logger() -> Iterator[logging.Logger]:
    import optuna

    logger = logging.getLogger("rl_order_execution")
    saved = (logger.level, list(logger.handlers), optuna.logging.get_verbosity())
    logger.handlers.clear()
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    optuna.logging.set_verbosity(saved[2])


def test_configure_logging_sets_the_level_and_one_handler(toolkit_logger: logging.Logger) -> None:
    import optuna

    configure_logging(LoggingSettings(level="DEBUG"))
    assert toolkit_logger.getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("rl_order_execution.training").getEffectiveLevel() == logging.DEBUG
    assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    configure_logging(LoggingSettings(level="ERROR"))
    assert toolkit_logger.getEffectiveLevel() == logging.ERROR
    assert optuna.logging.get_verbosity() == optuna.logging.ERROR
    assert len(toolkit_logger.handlers) == 1


def test_ppo_and_sac_budgets_keep_the_default_number_of_environment_steps() -> None:
    """6,000 PPO episodes of 50 steps are 30,000 episodes of 10 steps; the DDQN's stays 3,000."""
    from rl_order_execution.config import Settings

    def episodes(agent: str, horizon: int | None = None, **rl: object) -> int:
        data: dict[str, object] = {"rl": {"agent": agent, **rl}}
        if horizon is not None:
            data["simulation"] = {"time_horizon": horizon}
        return Settings.model_validate(data).rl.episodes

    assert episodes("ppo") == 6000 and episodes("ppo", 10) == 30_000
    assert episodes("sac") == 1500 and episodes("sac", 20) == 3750
    assert episodes("ddqn", 10) == 3000  # the Double DQN's budget is in episodes
    assert episodes("ppo", 10, episodes=123) == 123  # an explicit budget wins
    assert episodes("ppo", 7) == 42_858  # rounded up
