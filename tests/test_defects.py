"""The defects a new user hit (issue 23), each pinned: a statistic that cannot be computed is n/a,
never NaN or a numpy warning; every mistake is one line naming the flag, variable or file; the
CLI says its version and shows flags as flags; outputs go only where asked; make installs
nothing at run time once set up."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from rl_order_execution import __version__
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.runs.resume import ResumeFile, RunManifest, resumed_run

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
TINY = """
simulation:
  time_horizon: 10
rl:
  episodes: 40
  n_envs: 8
  learning_starts: 50
  batch_size: 32
  eval_interval: 20
  validation_episodes: 50
logging:
  tensorboard: false
  progress: false
"""
# an exception's class name in a message meant for a user
INTERNAL_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback")


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def _no_nan(value: str) -> None:
    raise AssertionError(f"{value} in metrics.json")


def test_two_test_episodes_report_what_can_be_computed_and_mark_the_rest_n_a(
    tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["run", "--config", str(tiny), "--eval-episodes", "2", "--output-dir", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "degrees of freedom <= 0"
        result = runner.invoke(app, [*args, "--no-best-params"])
    assert result.exit_code == 0, result.output
    # "(CI n/a)" may wrap inside its cell on a narrow console: its two halves are both shown
    assert "RuntimeWarning" not in result.output and "n/a)" in result.output
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=_no_nan)
    agent = metrics["strategies"]["agent"]
    assert isinstance(agent["savings_cost"]["avg_savings_bps"], float)  # computed
    assert isinstance(agent["savings_cost"]["win_rate"], float)
    # one antithetic pair: no spread between units, so no interval, SE or test
    for key in ("ci95_low_bps", "ci95_high_bps", "se", "p_value"):
        assert agent["savings_cost"][key] is None, key
    assert agent["savings_cost"]["significant"] is False
    assert agent["cost_se"] is None and isinstance(agent["cost_std"], float)
    assert (out / "report.md").is_file() and (out / "frontier.png").is_file()


def _stopped_run(folder: Path, command: str = "run") -> None:
    settings = Settings()
    ResumeFile(folder, RunManifest(command, settings), settings.simulation.seed, 1000).write(
        None, 0
    )


def test_resume_with_another_agent_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "stopped"
    folder.mkdir()
    _stopped_run(folder)
    result = runner.invoke(app, ["run", "--resume", str(folder), "--agent", "ppo"])
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert "--agent ppo" in line and "rl.agent = ddqn" in line
    assert resumed_run(folder, "run", {"--agent": "ddqn"}).settings.rl.agent == "ddqn"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("RL_SIMULATION_VOLATILITY", "0.003", "RL_SIMULATION__VOLATILITY"),  # _ for __
        ("RL_SIMULATON__VOLATILITY", "0.003", "RL_SIMULATION__VOLATILITY"),  # unknown section
        ("RL_SIMULATION__VOLATILTY", "0.003", "RL_SIMULATION__VOLATILITY"),  # unknown field
        ("RL_RL__PPO_N_ENVS", "8", "RL_RL__PPO__N_ENVS"),
        ("RL_EVALUATION__EPISODES__X", "8", "RL_EVALUATION__EPISODES"),  # below a plain value
    ],
)
def test_an_rl_variable_that_names_no_setting_names_the_closest_one(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["config", "show", "--no-best-params"])
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert variable in line and f"did you mean {named}" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RL_SIMULATION__ACTION_MULTIPLIERS", "[0, 1, 2"),
        ("RL_RL__HIDDEN_SIZES", "64,64"),
        ("RL_RL__PPO", "{n_envs: 8}"),
    ],
)
def test_a_malformed_list_in_an_rl_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["config", "show", "--no-best-params"])
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert variable in line and "JSON" in line and not INTERNAL_NAME.search(line)


def test_valid_rl_variables_still_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("rl_rl__ppo__n_envs", "8")  # any case, as pydantic-settings reads them
    monkeypatch.setenv("RL_REPLAY__COLUMNS__CLOSE", "px")  # a key inside a mapping setting
    monkeypatch.setenv("RL_SIMULATION__MARKET_VOLUME", "null")
    from rl_order_execution.config import load_settings

    settings, _ = load_settings(None, None, None)
    assert settings.rl.ppo.n_envs == 8 and settings.replay.columns == {"close": "px"}


def test_a_folder_or_a_corrupt_file_as_checkpoint_says_what_it_is(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"\x80\x02garbage")
    cases = {
        str(run): f"is a folder, not a checkpoint file; its checkpoint is {run / 'model.pt'}",
        str(run / "model.pt"): "not a PyTorch file, or a damaged one",
        str(tmp_path / "empty.pt"): "an empty file",
        str(tmp_path / "other.pt"): "a PyTorch file, but not an rl-exec checkpoint",
    }
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"weights": [1, 2]}, tmp_path / "other.pt")
    for path, message in cases.items():
        result = runner.invoke(app, ["evaluate", "--checkpoint", path])
        assert result.exit_code == 2, result.output
        line = _one_line(result.output)
        assert message in line and not INTERNAL_NAME.search(line), line


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rl-exec {__version__}"


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["train"],
        ["evaluate"],
        ["benchmark"],
        ["optimize"],
        ["compare"],
        ["sweep"],
        ["config", "show"],
        ["data", "bars"],
        [],
    ],
)
def test_boolean_flags_render_as_flags(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "--help" in result.output


def test_optimize_takes_the_tuning_and_validation_budgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Settings] = []

    def fake_optimize(settings: Settings, **_: Any) -> Any:
        seen.append(settings)
        return SimpleNamespace(finished=True)

    monkeypatch.setattr("rl_order_execution.tuning.optimize", fake_optimize)
    args = ["optimize", "--no-best-params", "--tuning-episodes", "77"]
    result = runner.invoke(app, [*args, "--validation-episodes", "33"])
    assert result.exit_code == 0, result.output
    assert seen[0].optimization.tuning_episodes == 77
    assert seen[0].optimization.validation_episodes == 33
    for flag in ("--tuning-episodes", "--validation-episodes"):
        bad = runner.invoke(app, ["optimize", "--no-best-params", flag, "0"])
        assert bad.exit_code == 2
        assert flag in _one_line(bad.output) and ">= 1" in bad.output


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "x/../y", ""])
def test_run_names_that_leave_or_hide_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    result = runner.invoke(app, ["run", "--run-name", name, "--episodes", "1"])
    assert result.exit_code == 2
    assert "--run-name" in _one_line(result.output)
    assert not (tmp_path / "output").exists()


def test_benchmark_writes_a_run_folder_of_its_own_behind_the_guard(tmp_path: Path) -> None:
    base = ["benchmark", "--eval-episodes", "100", "--no-best-params"]
    first = runner.invoke(app, base)
    assert first.exit_code == 0, first.output
    (folder,) = (tmp_path / "output" / "runs").iterdir()
    assert folder.name.startswith("benchmark-")
    assert {p.name for p in folder.iterdir()} == {"benchmark.json", "frontier.png"}
    named = [*base, "--run-name", "check"]
    assert runner.invoke(app, named).exit_code == 0
    again = runner.invoke(app, named)
    assert again.exit_code == 2 and "--overwrite" in _one_line(again.output)
    assert runner.invoke(app, [*named, "--overwrite"]).exit_code == 0


@pytest.fixture
def quality(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "quality", module)
    spec.loader.exec_module(module)
    return module


def test_quality_out_writes_only_there(
    quality: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots: list[Path] = []

    def fake_sweep(configs: list[Path], agents: list[str], seeds: int, out: Path, _: int) -> Path:
        roots.append(out)
        return out / "sweep"

    def fake_results(sweep: Path, config: Path, agent: str, seeds: list[int]) -> Any:
        share = {"share": "gap_captured", "shares": [0.5], "seconds": 1.0}
        return share | {"best_discrete": None, "vwap": None, "calibrated": None}

    monkeypatch.setattr(quality, "run_sweep", fake_sweep)
    monkeypatch.setattr(quality, "market_results", fake_results)
    monkeypatch.setattr(quality, "snapped_share", lambda config: None)
    before = quality.RESULTS.read_bytes() if quality.RESULTS.is_file() else None
    out = tmp_path / "q"
    argv = ["quality.py", "--out", str(out), "--seeds", "1", "--agents", "ddqn", "default"]
    monkeypatch.setattr(sys, "argv", argv)
    quality.main()
    assert roots == [out]
    assert json.loads((out / "quality.json").read_text())["markets"]["default"]["shares"] == [0.5]
    assert (quality.RESULTS.read_bytes() if quality.RESULTS.is_file() else None) == before
    assert quality.output_paths(None) == (Path("output/quality"), quality.RESULTS)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_and_optuna_dashboard_install_nothing_at_run_time(tmp_path: Path) -> None:
    """With the tools in place (after make install-dev), neither target runs pip or venv, even
    where no install stamp exists or pyproject.toml is newer than it."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("pytest", "optuna-dashboard"):
        (venv / "bin" / tool).write_text("#!/bin/sh\n")
    command = ["make", "-n", "-C", str(ROOT), f"VENV={venv}", "test", "optuna-dashboard"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    planned = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    assert "pip" not in planned and "venv" not in planned.replace(str(venv), "")
    assert f"{venv}/bin/pytest" in planned and f"{venv}/bin/optuna-dashboard" in planned
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("optuna-dashboard") for d in dev["dev"])
