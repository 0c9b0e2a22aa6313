from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rl_order_execution.cli import app

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
evaluation:
  episodes: 64
"""


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config/ or best_params.yaml of the developer's checkout applies."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_run_end_to_end_writes_every_output(tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--config", str(tiny_config), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("metrics.json", "model.pt", "execution_analysis.png", "is_distribution.png"):
        assert (out / name).is_file(), name
    assert list(out.glob("events.out.tfevents.*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["episodes"] == 64
    assert metrics["settings"]["simulation"]["time_horizon"] == 10
    for name in ("twap", "agent"):
        m = metrics["strategies"][name]
        for key in ("is_mean", "is_std", "cost_mean", "cost_std", "is_mean_bps", "cost_mean_bps"):
            assert isinstance(m[key], float)
        assert set(m["savings_cost"]) >= {"avg_savings", "information_ratio", "win_rate", "var_95"}
    assert metrics["strategies"]["twap"]["savings_is"]["avg_savings"] == 0.0
    assert str(out / "metrics.json") in result.output.replace("\n", "")

    again = runner.invoke(
        app,
        ["evaluate", "--checkpoint", str(out / "model.pt"), "--output-dir", str(tmp_path / "ev")],
    )
    assert again.exit_code == 0, again.output
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert evaluated["strategies"]["agent"] == metrics["strategies"]["agent"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--config", "/nonexistent.yaml"], "does not exist"),
        (["run", "--episodes", "0"], "rl.episodes"),
        (["run", "--device", "tpu"], "rl.device"),
        (["evaluate", "--checkpoint", "/nonexistent.pt"], "does not exist"),
        (["train", "--episodes", "1", "--output-dir", "/dev/null/run"], "/dev/null/run"),
    ],
)
def test_user_mistakes_exit_2_with_one_clear_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unreadable_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_text("not a checkpoint")
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(bad)])
    assert result.exit_code == 2
    assert "not a readable rl-exec checkpoint" in result.output


def test_config_show_names_the_source(tiny_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__DRIFT", "0.001")
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["config", "show", "--config", str(tiny_config)])
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "env" in lines["simulation.drift"]
    assert "config" in lines["simulation.time_horizon"]
    assert "default" in lines["simulation.total_shares"]


def test_benchmark_self_check_writes_json_and_passes(tmp_path: Path) -> None:
    config = tmp_path / "market.yaml"
    config.write_text(
        "simulation:\n  time_horizon: 8\n  drift: 0.0003\nevaluation:\n  episodes: 4000\n"
    )
    out = tmp_path / "bench"
    result = runner.invoke(app, ["benchmark", "--config", str(config), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "benchmark.json").read_text())
    for name in ("twap", "almgren-chriss", "optimal"):
        entry = data["strategies"][name]
        assert set(entry) >= {
            "cost_mean_exact",
            "is_mean_exact",
            "is_std_exact",
            "cost_mean",
            "cost_se",
        }
        assert entry["ok"] is True
    assert "best-discrete" not in data["strategies"]  # drift: not a martingale market
    assert (out / "frontier.png").is_file()


def test_benchmark_exits_1_when_closed_form_and_monte_carlo_disagree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from rl_order_execution.evaluation import ExactValues, selfcheck

    real = selfcheck.exact_values

    def wrong(p: object, name: str, strategy: object = None) -> ExactValues:
        values = real(p, name, strategy)  # type: ignore[arg-type]
        if name == "twap" and values.is_mean_exact is not None:
            # a bug in a closed form (about 20 standard errors)
            return replace(values, is_mean_exact=values.is_mean_exact + 500.0)
        return values

    monkeypatch.setattr(selfcheck, "exact_values", wrong)
    result = runner.invoke(app, ["benchmark", "--output-dir", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "self-check FAILED" in result.output and "twap" in result.output


def test_run_with_seeds_summarises_across_seeds(tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "multi"
    result = runner.invoke(
        app, ["run", "--config", str(tiny_config), "--output-dir", str(out), "--seeds", "2"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    agents = [name for name in metrics["strategies"] if name.startswith("agent-")]
    assert len(agents) == 2
    summary = metrics["seeds_summary"]["cost_savings_bps"]
    assert len(summary["values"]) == 2
    assert summary["ci95_low"] <= summary["mean"] <= summary["ci95_high"]
    assert len(list(out.glob("seed-*/model.pt"))) == 2
    report = (out / "report.md").read_text()
    assert "Across training seeds" in report and "![frontier](frontier.png)" in report


def test_a_garch_market_with_drift_labels_its_optimum_approximate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RL_SIMULATION__PRICE_MODEL", "garch")
    monkeypatch.setenv("RL_SIMULATION__DRIFT", "0.0005")
    out = tmp_path / "run"
    args = ["run", "--episodes", "20", "--eval-episodes", "200", "--output-dir", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-best-params"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "metrics.json").read_text())
    assert data["exact"]["cost_optimal"] is None
    assert "gap_captured" not in data["strategies"]["agent"]
    assert any("approximation" in w for w in data["warnings"])
    assert data["strategies"]["twap"]["is_std_exact"] is None  # no closed form under GARCH
    assert data["strategies"]["twap"]["cost_mean_exact"] is not None  # the mean is GBM's
