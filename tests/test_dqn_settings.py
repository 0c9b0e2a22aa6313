"""rl.dqn holds the Double DQN's settings; the original project's flat rl.<name> still reads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState
from typer.testing import CliRunner

from rl_order_execution.agents.checkpoint import load_checkpoint
from rl_order_execution.cli import app
from rl_order_execution.config import DQNSettings, Settings, SettingsError, load_settings
from rl_order_execution.config.schema import DQN_FIELDS
from rl_order_execution.tuning.best_params import tuned_entry

OLD_RUN = Path(__file__).parent / "data" / "old_ddqn"  # `run --episodes 30` before rl.dqn
runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config/ of the repository's


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_double_dqns_settings_live_in_rl_dqn_beside_ppo_and_sac() -> None:
    rl = Settings().rl
    assert (rl.dqn, rl.ppo.learning_rate, rl.sac.learning_rate) == (DQNSettings(), 3e-4, 1e-3)
    assert set(DQN_FIELDS).isdisjoint(type(rl).model_fields)
    # used by PPO and SAC too: shared
    assert {"gamma", "lr_end_fraction", "reward_scale"} <= set(type(rl).model_fields)


def test_the_nested_name_sets_it_directly_with_no_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, "rl:\n  dqn:\n    lr: 0.002\n    n_envs: 4\n")
    monkeypatch.setenv("RL_RL__DQN__LR", "0.004")
    settings, applied = load_settings(None, config, None)
    assert (settings.rl.dqn.lr, settings.rl.dqn.n_envs) == (0.004, 4)  # env beats the file
    assert [kind for _, kind in applied] == ["file"]


def test_the_flat_names_still_work_with_one_note_naming_where_they_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, "rl:\n  lr: 0.002\n  epsilon_decay: 0.9\n  gamma: 0.99\n")
    settings, applied = load_settings(None, config, None)
    assert (settings.rl.dqn.lr, settings.rl.dqn.epsilon_decay, settings.rl.gamma) == (
        0.002,
        0.9,
        0.99,
    )
    note = (
        "rl.lr is now rl.dqn.lr, rl.epsilon_decay is now rl.dqn.epsilon_decay; "
        f"read from config ({config})"
    )
    assert applied == [(f"config ({config})", "file"), (note, "note")]
    monkeypatch.setenv("RL_RL__HIDDEN_SIZES", "[16, 8]")
    monkeypatch.setenv("RL_RL__N_ENVS", "4")
    from_env, applied = load_settings({"rl.batch_size": 64}, None, None)
    assert from_env.rl.dqn.hidden_sizes == [16, 8] and from_env.rl.dqn.n_envs == 4
    assert from_env.rl.dqn.batch_size == 64
    assert applied == [
        (
            "rl.batch_size is now rl.dqn.batch_size, rl.hidden_sizes is now rl.dqn.hidden_sizes, "
            "rl.n_envs is now rl.dqn.n_envs; read from cli and env",
            "note",
        )
    ]


def test_a_flat_name_below_a_nested_one_from_a_higher_source_loses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, "rl:\n  lr: 0.002\n")
    monkeypatch.setenv("RL_RL__DQN__LR", "0.004")
    settings, _ = load_settings(None, config, None)
    assert settings.rl.dqn.lr == 0.004


def test_both_names_in_one_source_are_an_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, "rl:\n  lr: 0.002\n  dqn:\n    lr: 0.003\n")
    with pytest.raises(SettingsError, match=r"config \(.*\): rl\.lr and rl\.dqn\.lr both given"):
        load_settings(None, config, None)
    monkeypatch.setenv("RL_RL__N_ENVS", "4")
    monkeypatch.setenv("RL_RL__DQN__N_ENVS", "8")
    with pytest.raises(SettingsError, match=r"env: rl\.n_envs and rl\.dqn\.n_envs both given"):
        load_settings(None, None, None)


def test_the_validators_stay_with_the_fields() -> None:
    with pytest.raises(ValueError, match="epsilon_end must be <= epsilon_start"):
        DQNSettings(epsilon_start=0.1, epsilon_end=0.5)
    with pytest.raises(ValueError, match="batch_size must be <= memory_size"):
        Settings.model_validate({"rl": {"batch_size": 64, "memory_size": 32}})  # flat, stored


def test_config_show_prints_the_note_once_and_rl_dqn_lr(tmp_path: Path) -> None:
    config = _config(tmp_path, "rl:\n  lr: 0.002\n")
    shown = runner.invoke(app, ["config", "show", "--config", str(config), "--no-best-params"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("rl.lr is now rl.dqn.lr; read from config") == 1
    (row,) = [line for line in shown.output.splitlines() if " rl.dqn.lr " in line]
    assert "0.002" in row and "config" in row
    assert not [line for line in shown.output.splitlines() if " rl.lr " in line]


def test_a_trial_of_an_older_study_is_written_with_the_nested_names() -> None:
    trial = optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=1.0, user_attrs={"rl": {"lr": 0.001, "gamma": 0.99}}
    )
    entry = tuned_entry(trial, "study", "sqlite:///db/x.db")
    assert entry["rl"] == {"dqn": {"lr": 0.001}, "gamma": 0.99}


def _numbers(tree: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a metrics.json tree by its dotted path."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= _numbers(value, f"{path}.{key}" if path else str(key))
        return out
    return {path: tree}


def test_a_checkpoint_of_the_previous_format_evaluates_to_the_same_numbers(
    tmp_path: Path,
) -> None:
    payload = torch.load(OLD_RUN / "model.pt", map_location="cpu", weights_only=True)
    assert "lr" in payload["settings"]["rl"] and "dqn" not in payload["settings"]["rl"]
    loaded = load_checkpoint(OLD_RUN / "model.pt")
    assert loaded.settings.rl.dqn.lr == payload["settings"]["rl"]["lr"]
    assert loaded.settings.rl.dqn.hidden_sizes == payload["settings"]["rl"]["hidden_sizes"]

    old = json.loads((OLD_RUN / "metrics.json").read_text())
    out = tmp_path / "eval"
    args = ["--checkpoint", str(OLD_RUN / "model.pt"), "--output-dir", str(out)]
    result = runner.invoke(app, ["evaluate", *args, "--eval-episodes", str(old["episodes"])])
    assert result.exit_code == 0, result.output
    new = json.loads((out / "metrics.json").read_text())
    assert new["evaluation_seed"] == old["evaluation_seed"]
    # every number the old code wrote, identical (the new code may write more of them), but the
    # gap captured: it is now paired with the optimum's own saving on these episodes, on purpose
    old_numbers, new_numbers = _numbers(old["strategies"]), _numbers(new["strategies"])
    assert len(old_numbers) > 100
    for name, m in new["strategies"].items():
        paired = m["savings_cost"]["avg_savings"] / m["gap_captured"]["gap"]
        assert m["gap_captured"]["value"] == pytest.approx(paired, rel=1e-12), name
        exact_gap = old["strategies"][name]["gap_captured"]["exact_gap"]
        assert m["gap_captured"]["exact_gap"] == exact_gap
    assert new["strategies"]["optimal"]["gap_captured"]["gap"] == pytest.approx(
        new["strategies"]["optimal"]["savings_cost"]["avg_savings"], rel=1e-12
    )
    old_numbers = {k: v for k, v in old_numbers.items() if ".gap_captured." not in k}
    for key, value in old_numbers.items():
        same = new_numbers[key] == value or (
            isinstance(value, float) and math.isnan(value) and math.isnan(new_numbers[key])
        )
        assert same, f"{key}: {new_numbers[key]} now, {value} before"
