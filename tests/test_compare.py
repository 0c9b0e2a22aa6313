"""`rl-exec compare`: headline numbers of finished runs, paired episode by episode when the runs
share a market and test episodes, unpaired (and said so) otherwise; refusals in one line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rl_order_execution.cli import app
from rl_order_execution.config import Settings, SettingsError
from rl_order_execution.config.identity import settings_market
from rl_order_execution.evaluation import Z95
from rl_order_execution.runs.compare import compare_runs, paired_se, read_run
from rl_order_execution.runs.episodes import (
    EPISODES_FILE,
    load_episode_costs,
    save_episode_costs,
)

runner = CliRunner()
BPS = 1.0  # the fake evaluations' costs are in bps already
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
logging:
  tensorboard: false
  progress: false
"""


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _evaluation(costs: dict[str, np.ndarray], antithetic: bool = False) -> Any:
    """What save_episode_costs reads: params.bps and per-strategy shortfall and cost ($)."""
    outcomes = {n: SimpleNamespace(shortfall=c - 1.0, cost=c) for n, c in costs.items()}
    return SimpleNamespace(
        params=SimpleNamespace(bps=BPS), outcomes=outcomes, antithetic=antithetic
    )


def _savings(twap: np.ndarray, agent: np.ndarray) -> dict[str, float]:
    s = twap - agent
    se = float(s.std(ddof=1)) / math.sqrt(len(s))
    mean = float(s.mean())
    return {
        "avg_savings_bps": mean,
        "ci95_low_bps": mean - Z95 * se,
        "ci95_high_bps": mean + Z95 * se,
        "win_rate": float((agent < twap).mean()),
        "var_95_bps": float(np.percentile(s, 5)),
    }


def fake_run(
    folder: Path,
    twap: np.ndarray,
    agent: np.ndarray,
    settings: Settings | None = None,
    episodes_file: bool = True,
) -> Path:
    """A finished run folder: metrics.json (as rl-exec run writes it, the keys compare reads)
    and, unless told otherwise, episodes.npz."""
    folder.mkdir(parents=True)
    settings = settings or Settings()
    m = {
        "savings_cost": _savings(twap, agent),
        "savings_is": _savings(twap, agent),
        "gap_captured": {"value": 0.9, "ci95_low": 0.85, "ci95_high": 0.95, "exact_gap": 1.0},
    }
    metrics = {
        "episodes": len(twap),
        "evaluation_seed": settings.evaluation.seed,
        "settings": settings.model_dump(mode="json"),
        "strategies": {"twap": {"savings_cost": _savings(twap, twap)}, "agent": m},
        "training": {"agent": {"seconds": 12.5}},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if episodes_file:
        save_episode_costs(folder / EPISODES_FILE, _evaluation({"twap": twap, "agent": agent}))
    return folder


def _costs(seed: int, n: int = 200) -> np.ndarray:
    return 700.0 + np.random.default_rng(seed).normal(0.0, 30.0, n)


def test_episode_costs_round_trip_keep_twap_and_the_agents_only(tmp_path: Path) -> None:
    twap, agent, other = _costs(0), _costs(1), _costs(2)
    path = tmp_path / EPISODES_FILE
    evaluation = _evaluation({"twap": twap, "optimal": other, "agent-7": agent}, antithetic=True)
    evaluation.params.bps = 2.0
    save_episode_costs(path, evaluation)
    saved = load_episode_costs(path)
    assert sorted(saved.cost_bps) == ["agent-7", "twap"] and saved.antithetic
    np.testing.assert_array_equal(saved.cost_bps["agent-7"], agent * 2.0)
    np.testing.assert_array_equal(saved.shortfall_bps["twap"], (twap - 1.0) * 2.0)


def test_same_market_and_episodes_are_paired_with_the_hand_computed_interval(
    tmp_path: Path,
) -> None:
    twap, a, b = _costs(0), _costs(1), _costs(2)
    fake_run(tmp_path / "a", twap, a)
    fake_run(tmp_path / "b", twap, b)
    comparison = compare_runs([tmp_path / "a", tmp_path / "b"])
    diff = comparison.differences[1]
    assert diff is not None and diff.paired and diff.why_unpaired is None
    d = (twap - b) - (twap - a)  # b's savings minus a's, per episode
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    assert diff.cost_savings.value == pytest.approx(float(d.mean()), abs=1e-9)
    assert diff.cost_savings.low == pytest.approx(float(d.mean()) - Z95 * se, abs=1e-9)
    assert diff.cost_savings.high == pytest.approx(float(d.mean()) + Z95 * se, abs=1e-9)


def test_another_market_is_unpaired_with_the_combined_standard_error(tmp_path: Path) -> None:
    twap, a, b = _costs(0), _costs(1), _costs(2)
    other = Settings.model_validate({"simulation": {"volatility": 0.003}})
    fake_run(tmp_path / "a", twap, a)
    fake_run(tmp_path / "b", twap, b, other)
    comparison = compare_runs([tmp_path / "a", tmp_path / "b"])
    diff = comparison.differences[1]
    assert diff is not None and not diff.paired
    assert diff.why_unpaired is not None and settings_market(other) in diff.why_unpaired
    se_a = float((twap - a).std(ddof=1)) / math.sqrt(len(a))
    se_b = float((twap - b).std(ddof=1)) / math.sqrt(len(b))
    half = Z95 * math.hypot(se_a, se_b)
    mean = float((twap - b).mean() - (twap - a).mean())
    assert diff.cost_savings.value == pytest.approx(mean, abs=1e-9)
    assert diff.cost_savings.high == pytest.approx(mean + half, abs=1e-9)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"evaluation": {"seed": 1}}, "different test episodes"),
        ({}, "TWAP's per-episode costs differ"),
        (None, f"no {EPISODES_FILE}"),
    ],
)
def test_pairing_needs_the_same_test_episodes_and_saved_costs(
    tmp_path: Path, change: dict[str, Any] | None, why: str
) -> None:
    twap, a, b = _costs(0), _costs(1), _costs(2)
    fake_run(tmp_path / "a", twap, a)
    settings = Settings.model_validate(change or {})
    # same settings but other costs for TWAP: not the same episodes (another code version, say)
    twap_b = _costs(3) if change == {} else twap
    fake_run(tmp_path / "b", twap_b, b, settings, episodes_file=change is not None)
    diff = compare_runs([tmp_path / "a", tmp_path / "b"]).differences[1]
    assert diff is not None and not diff.paired and why in (diff.why_unpaired or "")


def test_antithetic_pairs_are_the_units_and_too_few_leave_no_interval() -> None:
    d = np.array([1.0, 3.0, -1.0, 5.0])  # pairs (1, -1) and (3, 5): means 0 and 4
    assert paired_se(d, antithetic=True) == pytest.approx(np.std([0.0, 4.0], ddof=1) / math.sqrt(2))
    assert paired_se(np.array([1.0, 2.0]), antithetic=True) is None  # one pair: no spread


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such folder"),
        (lambda p: p.write_text("x"), "not a folder"),
        (lambda p: p.mkdir(), "not a finished run (no metrics.json)"),
        (lambda p: (p.mkdir(), (p / "resume.pt").write_bytes(b"x")), "an unfinished run"),
        (lambda p: (p.mkdir(), (p / "model.pt").write_bytes(b"x")), "without an evaluation"),
        (lambda p: (p.mkdir(), (p / "benchmark.json").write_text("{}")), "a self-check"),
        (lambda p: (p.mkdir(), (p / "metrics.json").write_text("{")), "not readable JSON"),
    ],
)
def test_a_folder_that_is_not_a_finished_run_is_refused_in_one_line(
    tmp_path: Path, make: Any, message: str
) -> None:
    fake_run(tmp_path / "good", _costs(0), _costs(1))
    bad = tmp_path / "bad"
    make(bad)
    with pytest.raises(SettingsError, match=re.escape(message)):
        read_run(bad)
    result = runner.invoke(app, ["compare", str(tmp_path / "good"), str(bad)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_compare_needs_two_distinct_runs(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "a", _costs(0), _costs(1))
    for args in ([str(run)], [str(run), f"{run}/"], []):
        result = runner.invoke(app, ["compare", *args])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_compare_writes_table_json_and_plot_behind_the_run_folder_guard(tmp_path: Path) -> None:
    twap = _costs(0)
    runs = [str(fake_run(tmp_path / n, twap, _costs(i))) for i, n in enumerate("ab", 1)]
    result = runner.invoke(app, ["compare", *runs])
    assert result.exit_code == 0, result.output
    (out,) = (tmp_path / "output" / "compare").iterdir()  # a new folder under output/compare
    assert {p.name for p in out.iterdir()} == {"compare.md", "compare.json", "compare.png"}
    data = json.loads((out / "compare.json").read_text(), parse_constant=_no_nan)
    assert data["reference"] == "a" and data["rows"][1]["vs_reference"]["paired"] is True
    assert data["rows"][0]["training_seconds"] == 12.5
    assert "paired" in (out / "compare.md").read_text() and "paired" in result.output
    again = runner.invoke(app, ["compare", *runs, "--output-dir", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert (
        runner.invoke(app, ["compare", *runs, "--output-dir", str(out), "--overwrite"]).exit_code
        == 0
    )
    inside = runner.invoke(app, ["compare", *runs, "--output-dir", f"{runs[0]}/cmp"])
    assert inside.exit_code == 2 and "inside the run" in inside.output
    assert not (Path(runs[0]) / "cmp").exists()


def _no_nan(value: str) -> None:
    raise AssertionError(f"{value} in compare.json")


def test_unknown_intervals_are_null_in_json_and_n_a_in_the_table(tmp_path: Path) -> None:
    twap, a = _costs(0, n=2), _costs(1, n=2)
    run = fake_run(tmp_path / "a", twap, a)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["strategies"]["agent"]["savings_cost"]["ci95_low_bps"] = None  # too few episodes
    (run / "metrics.json").write_text(json.dumps(metrics))
    fake_run(tmp_path / "b", twap, _costs(2, n=2), episodes_file=False)
    result = runner.invoke(app, ["compare", str(run), str(tmp_path / "b"), "--output-dir", "c"])
    assert result.exit_code == 0, result.output
    data = json.loads(Path("c/compare.json").read_text(), parse_constant=_no_nan)
    assert data["rows"][0]["cost_savings_bps"]["ci95_low"] is None
    assert "CI n/a" in result.output


def test_two_real_runs_on_one_market_are_paired_and_agree_with_their_metrics(
    tmp_path: Path,
) -> None:
    """End to end: two tiny runs, their per-episode costs saved by save_episode_costs from an
    evaluation of each saved agent on the run's own test episodes, then rl-exec compare."""
    from rl_order_execution.agents.checkpoint import load_checkpoint
    from rl_order_execution.agents.greedy import GreedyAgent
    from rl_order_execution.evaluation import evaluate
    from rl_order_execution.market import MarketParams, shock_matrix
    from rl_order_execution.strategies import TWAP

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    runs = []
    for seed in (1, 2):
        out = tmp_path / f"run{seed}"
        args = ["run", "--config", str(config), "--seed", str(seed), "--output-dir", str(out)]
        result = runner.invoke(app, [*args, "--no-best-params"])
        assert result.exit_code == 0, result.output
        loaded = load_checkpoint(out / "model.pt")
        settings, ev = loaded.settings, loaded.settings.evaluation
        p = MarketParams.of(settings)
        shocks = shock_matrix(p, ev.seed, ev.episodes, ev.antithetic)
        evaluation = evaluate(p, [TWAP(), GreedyAgent(loaded.agent)], shocks, ev.antithetic)
        save_episode_costs(out / EPISODES_FILE, evaluation)
        runs.append(out)
    result = runner.invoke(app, ["compare", *map(str, runs), "--output-dir", "c"])
    assert result.exit_code == 0, result.output
    row = json.loads(Path("c/compare.json").read_text())["rows"][1]
    assert row["vs_reference"]["paired"] is True
    savings = [
        json.loads((r / "metrics.json").read_text())["strategies"]["agent"]["savings_cost"]
        for r in runs
    ]
    expected = savings[1]["avg_savings_bps"] - savings[0]["avg_savings_bps"]
    assert row["vs_reference"]["cost_savings_bps"]["value"] == pytest.approx(expected, abs=1e-6)
