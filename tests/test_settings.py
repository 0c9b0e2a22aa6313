from __future__ import annotations

from pathlib import Path

import pytest

from rl_order_execution.settings import SettingsError, load_settings, value_sources


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_cli_env_best_params_config_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _write(
        tmp_path / "config.yaml",
        "simulation:\n  risk_aversion: 0.2\n  drift: 0.001\n  volatility: 0.003\nrl:\n  lr: 0.01\n",
    )
    best = _write(tmp_path / "best.yaml", "simulation:\n  drift: 0.002\n  volatility: 0.004\n")
    monkeypatch.setenv("RL_SIMULATION__VOLATILITY", "0.005")
    monkeypatch.setenv("RL_RL__EPISODES", "77")
    settings, applied = load_settings({"rl.episodes": 5}, config, best)
    assert settings.simulation.risk_aversion == 0.2  # config file
    assert settings.simulation.drift == 0.002  # best_params beats config
    assert settings.simulation.volatility == 0.005  # env beats both files
    assert settings.rl.episodes == 5  # CLI beats env
    assert settings.rl.lr == 0.01
    assert settings.simulation.total_shares == 1000  # default
    assert [kind for _, kind in applied] == ["file", "file"]
    origin = value_sources({"rl.episodes": 5}, config, best)
    assert origin["rl.episodes"] == "cli"
    assert origin["simulation.volatility"] == "env"
    assert origin["simulation.drift"].startswith("best-params")
    assert origin["simulation.risk_aversion"].startswith("config")
    assert "simulation.total_shares" not in origin


def test_env_variable_alone_overrides_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__RISK_AVERSION", "0.7")
    monkeypatch.setenv("rl_rl__hidden_sizes", "[16, 8]")
    settings, _ = load_settings(None, None, None)
    assert settings.simulation.risk_aversion == 0.7
    assert settings.rl.hidden_sizes == [16, 8]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("simulation:\n  volatilty: 0.1\n", "simulation.volatilty: unknown setting"),
        ("simulation:\n  total_shares: -5\n", "simulation.total_shares"),
        ("rl:\n  epsilon_start: 0.1\n  epsilon_end: 0.5\n", "epsilon_end must be <= epsilon_start"),
        ("simulation:\n  liquidity_param: 0.06\n", "drive the price to zero"),
        ("simulation: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("simulation:\n  price_model: heston\n", "simulation.price_model"),
    ],
)
def test_bad_config_is_a_clear_settings_error(tmp_path: Path, text: str, message: str) -> None:
    config = _write(tmp_path / "c.yaml", text)
    with pytest.raises(SettingsError, match=message):
        load_settings(None, config, None)


def test_misspelt_env_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__RISK_AVERSON", "0.7")
    with pytest.raises(SettingsError, match="risk_averson: unknown setting"):
        load_settings(None, None, None)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(None, tmp_path / "nope.yaml", None, require_config=True)
