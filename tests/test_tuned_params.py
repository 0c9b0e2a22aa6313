"""Tuned parameters per agent kind and market: optimize writes its entry and keeps the others, a
run uses only the entry of its own agent and market and says so in one line, tuning never
changes the agent a run trains and never writes what did worse than the current settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState
from typer.testing import CliRunner

from rl_order_execution.cli import app
from rl_order_execution.config import (
    ReplaySettings,
    Settings,
    SettingsError,
    SimulationSettings,
    load_settings,
)
from rl_order_execution.config.identity import market_hash, settings_market
from rl_order_execution.config.tuned import legacy_market, read_tuned
from rl_order_execution.tuning.best_params import decide_best_params, write_best_params
from rl_order_execution.tuning.study import DEFAULTS_ATTR, KEY_ATTR, resolve_study_name

DEFAULT_MARKET = "30eaf23c"  # the default market's hash since the first edition
runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")


def _trial(number: int, value: float, rl: dict[str, Any], **attrs: Any) -> FrozenTrial:
    trial = optuna.trial.create_trial(
        value=value, params={}, distributions={}, user_attrs={"rl": rl, **attrs}
    )
    trial.number = number
    return trial


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_market_hash_is_stable_and_only_the_market() -> None:
    assert market_hash(SimulationSettings()) == DEFAULT_MARKET
    assert settings_market(Settings()) == DEFAULT_MARKET
    not_market = {"simulation": {"seed": 7}, "rl": {"agent": "ppo"}, "evaluation": {"seed": 1}}
    assert settings_market(Settings.model_validate(not_market)) == DEFAULT_MARKET
    assert market_hash(SimulationSettings(volatility=0.003)) != DEFAULT_MARKET
    # replay and book sections count only on the market that uses them
    unused = {"replay": {"path": "a.csv"}, "book": {"tick": 0.02}}
    assert settings_market(Settings.model_validate(unused)) == DEFAULT_MARKET
    replay = SimulationSettings(price_model="replay")
    assert market_hash(replay, ReplaySettings(path="a.csv")) != market_hash(
        replay, ReplaySettings(path="b.csv")
    )


def test_a_run_uses_only_the_entry_of_its_agent_and_market(tmp_path: Path) -> None:
    other = settings_market(Settings.model_validate({"simulation": {"volatility": 0.003}}))
    path = _write(
        tmp_path / "best.yaml",
        {
            "tuned": {
                "ddqn": {
                    DEFAULT_MARKET: {"rl": {"dqn": {"lr": 0.0005}}},
                    other: {"rl": {"dqn": {"lr": 0.002}}},
                },
                "ppo": {DEFAULT_MARKET: {"rl": {"ppo": {"learning_rate": 0.0001}}}},
            }
        },
    )
    ddqn, applied = load_settings(None, None, path)
    assert ddqn.rl.dqn.lr == 0.0005 and ddqn.rl.ppo.learning_rate == Settings().rl.ppo.learning_rate
    line = f"tuned parameters for ddqn on market {DEFAULT_MARKET} used ({path})"
    assert applied == [(line, "tuned")]
    ppo, _ = load_settings({"rl.agent": "ppo"}, None, path)
    assert ppo.rl.ppo.learning_rate == 0.0001 and ppo.rl.dqn.lr == Settings().rl.dqn.lr
    sac, applied = load_settings({"rl.agent": "sac"}, None, path)
    assert sac.rl.agent == "sac" and sac.rl.sac == Settings().rl.sac
    ((note, kind),) = applied
    assert kind == "note" and note == (
        f"{path}: tuned for ddqn on market {DEFAULT_MARKET}, ddqn on market {other}, ppo on "
        f"market {DEFAULT_MARKET}; this run is sac on market {DEFAULT_MARKET}; not used"
    )


def test_an_entry_never_sets_the_agent(tmp_path: Path) -> None:
    path = _write(tmp_path / "best.yaml", {"tuned": {"ddqn": {DEFAULT_MARKET: {"rl": {}}}}})
    path.write_text(path.read_text().replace("rl: {}", "rl: {agent: ppo, dqn: {lr: 0.0005}}"))
    settings, _ = load_settings(None, None, path)
    assert settings.rl.agent == "ddqn" and settings.rl.dqn.lr == 0.0005


def test_optimize_writes_its_entry_keeps_the_others_and_never_the_agent(tmp_path: Path) -> None:
    path = tmp_path / "best.yaml"
    ppo = Settings.model_validate({"rl": {"agent": "ppo"}})
    tuned = {"agent": "ppo", "ppo": {"learning_rate": 0.0002}}  # as PPO's search space returns it
    write_best_params(path, _trial(3, 12.5, tuned), "study-ppo", "sqlite:///db/x.db", ppo)
    ddqn = _trial(5, 9.0, {"dqn": {"lr": 0.0007}})
    baseline = _trial(0, 7.0, {})
    write_best_params(path, ddqn, "study", "sqlite:///db/x.db", Settings(), baseline)
    entries = yaml.safe_load(path.read_text())["tuned"]
    assert entries["ppo"][DEFAULT_MARKET]["rl"] == {"ppo": {"learning_rate": 0.0002}}
    assert entries["ddqn"][DEFAULT_MARKET]["rl"] == {"dqn": {"lr": 0.0007}}
    assert entries["ddqn"][DEFAULT_MARKET]["validation_bps"] == 9.0
    assert entries["ddqn"][DEFAULT_MARKET]["current_settings_bps"] == 7.0
    later, _ = load_settings(None, None, path)  # a plain run after tuning PPO: still ddqn
    assert later.rl.agent == "ddqn" and later.rl.dqn.lr == 0.0007


def test_parameters_that_did_worse_than_the_current_settings_are_never_written() -> None:
    current = _trial(0, 10.0, {}, **{KEY_ATTR: "k", DEFAULTS_ATTR: "k"})
    worse = _trial(1, 9.0, {"lr": 0.01}, **{KEY_ATTR: "other"})
    decision = decide_best_params([current, worse], "k", Path("best.yaml"), "ddqn on market x")
    assert not decision.write and "no trial beats" in decision.reason
    better = _trial(2, 11.0, {"lr": 0.002}, **{KEY_ATTR: "better"})
    decision = decide_best_params([current, worse, better], "k", Path("b.yaml"), "ddqn on m")
    assert decision.write and decision.reason.startswith("wrote b.yaml (tuned parameters for ddqn")
    failed = optuna.trial.create_trial(state=TrialState.FAIL)
    assert not decide_best_params([failed], "k", Path("b.yaml")).write


def test_an_old_format_file_applies_only_to_its_agent_and_market(tmp_path: Path) -> None:
    header = f"# study: rl-order-execution-ppo-{DEFAULT_MARKET}  storage: sqlite:///db/x.db\n"
    old = tmp_path / "old.yaml"
    old.write_text(header + "rl:\n  agent: ppo\n  ppo: {n_envs: 8}\n")
    assert legacy_market(old.read_text()) == DEFAULT_MARKET
    plain, applied = load_settings(None, None, old)  # a ddqn run: never switched to ppo
    assert plain.rl.agent == "ddqn" and applied[0][1] == "note"
    assert "tuned for ppo" in applied[0][0] and "this run is ddqn" in applied[0][0]
    ppo, applied = load_settings({"rl.agent": "ppo"}, None, old)
    assert ppo.rl.ppo.n_envs == 8 and applied[0][1] == "tuned" and "old-format" in applied[0][0]
    moved, _ = load_settings({"rl.agent": "ppo", "simulation.volatility": 0.003}, None, old)
    assert moved.rl.ppo.n_envs == Settings().rl.ppo.n_envs  # tuned on another market
    # no header, no agent: tuned for ddqn on a market it does not record, applied as before
    unrecorded = _write(tmp_path / "flat.yaml", {"rl": {"lr": 0.0005}})
    flat, applied = load_settings(None, None, unrecorded)
    assert flat.rl.dqn.lr == 0.0005 and "does not record its market" in applied[0][0]
    assert applied[-1] == (f"rl.lr is now rl.dqn.lr; read from best-params ({unrecorded})", "note")


def test_rewriting_an_old_format_file_keeps_its_entry_when_its_market_is_known(
    tmp_path: Path,
) -> None:
    old = tmp_path / "best.yaml"
    old.write_text(f"# study: s-ppo-{DEFAULT_MARKET}  storage: x\nrl:\n  agent: ppo\n  ppo: {{}}\n")
    note = write_best_params(old, _trial(1, 3.0, {"lr": 0.001}), "s", "sqlite://", Settings())
    tuned = read_tuned(old)
    assert tuned.legacy is None and note == ""
    assert {(e.agent, e.market) for e in tuned.entries} == {
        ("ppo", DEFAULT_MARKET),
        ("ddqn", DEFAULT_MARKET),
    }


def test_a_malformed_entries_file_is_one_line_naming_it(tmp_path: Path) -> None:
    bad = _write(tmp_path / "best.yaml", {"tuned": {"ddqn": {DEFAULT_MARKET: {"lr": 1}}}})
    with pytest.raises(SettingsError, match=f"{bad}: tuned must map"):
        load_settings(None, None, bad)
    mixed = _write(tmp_path / "mixed.yaml", {"tuned": {}, "rl": {"lr": 0.1}})
    with pytest.raises(SettingsError, match="put settings in the config file"):
        load_settings(None, None, mixed)


def test_the_cli_says_which_tuned_parameters_it_used(tmp_path: Path) -> None:
    Path("config").mkdir()
    _write(
        Path("config/best_params.yaml"),
        {"tuned": {"ddqn": {DEFAULT_MARKET: {"rl": {"dqn": {"lr": 0.0005}}}}}},
    )
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert f"tuned parameters for ddqn on market {DEFAULT_MARKET} used" in shown.output
    (lr,) = [line for line in shown.output.splitlines() if " rl.dqn.lr " in line]
    assert "0.0005" in lr and "best-params" in lr
    other = runner.invoke(app, ["config", "show", "--config", str(_vol(tmp_path))])
    assert other.exit_code == 0, other.output
    assert f"tuned for ddqn on market {DEFAULT_MARKET}" in other.output
    assert "not used" in other.output


def _vol(tmp_path: Path) -> Path:
    return _write(tmp_path / "vol.yaml", {"simulation": {"volatility": 0.003}})


def test_study_names_keep_their_market_hash() -> None:
    assert resolve_study_name(Settings()) == f"rl-order-execution-{DEFAULT_MARKET}"
