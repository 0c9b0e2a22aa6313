"""`rl-exec evaluate RUN --market CONFIG`: a trained agent on another market, written beside the
run and never over it; a market the agent cannot act on is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rl_order_execution.cli import app

runner = CliRunner()
TINY = (
    "simulation:\n  time_horizon: 10\nevaluation:\n  episodes: 40\nlogging:\n  tensorboard: false\n"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluate-market")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    run = root / "run"
    args = ["run", "--config", str(config), "--episodes", "5", "--no-best-params"]
    result = runner.invoke(app, [*args, "--output-dir", str(run)])
    assert result.exit_code == 0, result.output
    return run


def _market(tmp_path: Path, name: str, extra: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.replace("simulation:\n", f"simulation:\n{extra}"))
    return path


def _one_error_line(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    return lines[0]


def test_an_agent_is_evaluated_on_another_market_beside_its_run(
    trained: Path, tmp_path: Path
) -> None:
    own = (trained / "metrics.json").read_bytes()
    jump = _market(tmp_path, "jumpy", "  price_model: jump\n  volatility: 0.004\n")
    result = runner.invoke(app, ["evaluate", str(trained), "--market", str(jump)])
    assert result.exit_code == 0, result.output
    folder = trained / "evaluations" / "jumpy"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["settings"]["simulation"]["price_model"] == "jump"
    assert metrics["settings"]["simulation"]["volatility"] == 0.004
    assert metrics["provenance"]["market"]["settings"]["simulation"]["price_model"] == "jump"
    assert metrics["checkpoint"] == str(trained / "model.pt")
    assert (trained / "metrics.json").read_bytes() == own  # the run's own record is untouched
    again = runner.invoke(app, ["evaluate", str(trained), "--market", str(jump)])
    assert "already" in _one_error_line(again)  # the same guard as run folders
    named = ["evaluate", str(trained), "--market", str(jump), "--name", "stress"]
    assert runner.invoke(app, named).exit_code == 0
    assert (trained / "evaluations" / "stress" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("  action_multipliers: [0, 1, 2]\n", "has 3 actions; the ddqn agent was trained with 7"),
        ("  extra_features: [volume_remaining]\n", "differ from the agent's observation features"),
    ],
)
def test_a_market_the_agent_cannot_act_on_is_refused(
    trained: Path, tmp_path: Path, extra: str, problem: str
) -> None:
    other = _market(tmp_path, "other", extra)
    line = _one_error_line(runner.invoke(app, ["evaluate", str(trained), "--market", str(other)]))
    assert problem in line and str(other) in line
    assert not (trained / "evaluations" / "other").exists()


def test_evaluate_config_uses_the_files_market_never_drops_it(
    trained: Path, tmp_path: Path
) -> None:
    shifted = _market(tmp_path, "shifted", "  volatility: 0.01\n")
    out = tmp_path / "ev"
    args = ["evaluate", "--checkpoint", str(trained / "model.pt"), "--config", str(shifted)]
    result = runner.invoke(app, [*args, "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["simulation"]["volatility"] == 0.01


def test_evaluate_refuses_ambiguous_flags(trained: Path) -> None:
    both = ["evaluate", str(trained), "--checkpoint", str(trained / "model.pt")]
    neither = ["evaluate"]
    for args in (both, neither):
        line = _one_error_line(runner.invoke(app, args))
        assert "give a run folder (RUN) or --checkpoint FILE" in line
    lone_name = ["evaluate", str(trained), "--name", "x"]
    line = _one_error_line(runner.invoke(app, lone_name))
    assert "--name names the folder of an evaluation on --market" in line
