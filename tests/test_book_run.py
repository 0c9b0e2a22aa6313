"""The book market end to end: the learner's reward (hand-computed, and summing to minus the cost
with the price surprise removed), validation, `rl-exec run` on the preset through Typer's
CliRunner for each agent, the report's numbers, `rl-exec calibrate-book`, a tuner trial, and a
book settings error reaching the CLI as one line."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from rl_order_execution.agents.book import (
    book_params,
    learner_reward,
    price_surprise,
    reward_unit,
)
from rl_order_execution.agents.book.validation import BookValidator
from rl_order_execution.book_experiment import measure_throughput
from rl_order_execution.cli import app
from rl_order_execution.config import Settings, load_settings
from rl_order_execution.market.book import (
    BookParams,
    BookPolicy,
    BookVecEnv,
    MenuTable,
    Passive,
    Twap,
    menu_optimum,
    rollout,
)

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "benchmarks" / "markets" / "book.yaml"
DEFAULT = ROOT / "benchmarks" / "markets" / "default.yaml"
SAMPLE = ROOT / "src" / "rl_order_execution" / "data" / "datasets" / "book_sample.csv"
P = BookParams.default()
runner = CliRunner()

SHORT = {  # a short training: a few gradient updates, a small validation and test set
    "RL_RL__EVAL_INTERVAL": "32",
    "RL_RL__VALIDATION_EPISODES": "32",
    "RL_RL__DQN__LEARNING_STARTS": "64",
    "RL_RL__DQN__BATCH_SIZE": "32",
    "RL_RL__PPO__N_ENVS": "8",
    "RL_RL__PPO__N_STEPS": "16",
    "RL_RL__SAC__N_ENVS": "8",
    "RL_RL__SAC__BATCH_SIZE": "32",
    "RL_RL__SAC__GRADIENT_STEPS": "1",
    "RL_LOGGING__PROGRESS": "false",
}


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config/ or best_params.yaml of the developer's checkout applies."""
    monkeypatch.chdir(tmp_path)


# --- the learner's reward -------------------------------------------------------------------


def test_reward_unit_makes_the_menu_optimums_advantage_ten_units() -> None:
    assert reward_unit(P) == pytest.approx(10 / 2.1312653, rel=1e-6)


def test_learner_reward_of_a_filled_limit_order_by_hand() -> None:
    """k = 0, q = 1000 at S = P0, spread 1 tick, imbalance +0.4, `limit 1` fills: the learner
    sees 50 (0.005 + 0.01) - 2e-4 * 1000 + 950 * tau p theta iota, in $, times bps and unit."""
    obs = np.array([[1.0, 1.0, 0.0, 0.0, 1.0, 0.4]], dtype=np.float32)
    nxt = np.array([[59 / 60, 0.95, 0.01 / P.price_scale, 1.0, 2.0, 0.8]], dtype=np.float32)
    env_reward = np.array([(50 * (100.015 - 100) - 2e-4 * 1000) * P.bps])  # the env's, bps
    dollars = 50 * 0.015 - 0.2 + 950 * 0.01 * 0.3 * 0.6 * 0.4
    got = learner_reward(P, 1.0, 2.0, obs, env_reward, nxt)
    assert got.dtype == np.float32
    assert got[0] == pytest.approx(dollars * P.bps * 2.0, rel=1e-5)


def test_learner_rewards_sum_to_minus_the_cost_with_the_price_surprise_removed() -> None:
    """Over whole episodes (gamma 1, unit 1) the shaping telescopes: sum r' = -(C + surprise)."""
    env = BookVecEnv(64, P)
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(0)
    total, reward_sum = np.zeros(64), np.zeros(64)
    live = np.ones(64, dtype=bool)
    surprise = np.zeros(64)
    for _ in range(P.N):
        a = rng.integers(0, P.n_actions, 64)
        q = obs[:, 1].astype(np.float64) * P.Q
        nxt, r, done, _, info = env.step(a)
        final = np.where(done[:, None], info["final_obs"], nxt) if done.any() else nxt
        level = np.abs(obs[:, 5:6] - P.levels[None, :]).argmin(axis=1)
        q_next = final[:, 1].astype(np.float64) * P.Q
        surprise += live * q_next * (P.tick * final[:, 3] - P.expected_move[level])
        total += live * learner_reward(P, 1.0, 1.0, obs, r, final)
        reward_sum += live * r
        live &= ~done
        del q
        obs = nxt
    assert not live.any()
    np.testing.assert_allclose(total, reward_sum - surprise * P.bps, atol=1e-5)


@pytest.mark.parametrize("policy", [Twap(), Passive()])
def test_price_surprise_has_mean_zero_and_takes_the_mids_noise_out(policy: BookPolicy) -> None:
    """What stays random: the fills, the spreads and the imbalance path (its expected drift)."""
    paths = rollout(P, policy, 20_000, 3)
    s = price_surprise(P, paths)
    assert abs(s.mean()) < 4 * s.std() / np.sqrt(len(s))
    adjusted = paths.outcomes.cost + s
    assert adjusted.std() < 0.75 * paths.outcomes.cost.std()


def test_validation_scores_the_optimum_at_its_exact_advantage() -> None:
    v = BookValidator(P, 4000, 11)
    assert v.savings_bps(Twap()) == 0.0
    opt = menu_optimum(P)
    assert v.savings_bps(opt) == pytest.approx(2.1313, abs=0.03)  # fill noise only
    waiting = MenuTable("wait", np.zeros((1, 1, 1, 1), dtype=np.int64))
    assert v.savings_bps(waiting) < v.savings_bps(opt)


# --- settings ---------------------------------------------------------------------------------


def test_book_settings_take_the_books_horizon_and_agent_defaults() -> None:
    s = Settings(simulation={"price_model": "book"})
    assert s.simulation.time_horizon == 60
    assert book_params(s).N == 60
    assert (s.rl.dqn.updates_per_step, s.rl.dqn.epsilon_decay) == (2.0, 0.998)
    own = Settings(simulation={"price_model": "book", "time_horizon": 30}, rl={"dqn": {"lr": 0.01}})
    assert own.simulation.time_horizon == 30 and own.rl.dqn.lr == 0.01
    assert own.rl.dqn.updates_per_step == 2.0  # the book's default fills the section
    flat = Settings(simulation={"price_model": "book"}, rl={"updates_per_step": 1.0})
    assert flat.rl.dqn.updates_per_step == 1.0  # the original flat name, the user's value


def test_a_book_settings_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("simulation:\n  price_model: book\nbook:\n  clip: 0\n")
    result = runner.invoke(app, ["run", "--config", str(path), "--output-dir", "out"])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if not line.startswith("using ")]
    assert errors == ["error: book.clip: 0; it must satisfy 0 < clip <= total_shares (1000)"]
    assert not (tmp_path / "out").exists()


def test_extra_features_are_refused_on_the_book(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("simulation:\n  price_model: book\n  extra_features: [realised_vol]\n")
    result = runner.invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2 and "extra_features" in result.output


# --- rl-exec run ------------------------------------------------------------------------------


def _run(agent: str, out: Path, episodes: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for key, value in SHORT.items():
        monkeypatch.setenv(key, value)
    args = ["run", "--config", str(PRESET), "--agent", agent, "--episodes", str(episodes)]
    args += ["--eval-episodes", "400", "--output-dir", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "optimal-continuous" in result.output and "advantage over TWAP" in result.output
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return metrics


def test_run_on_the_book_preset_writes_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    metrics = _run("ddqn", out, 96, monkeypatch)
    for name in ("metrics.json", "report.md", "policy_map.png"):
        assert (out / name).is_file(), name
    assert metrics["episodes"] == 400
    assert metrics["settings"]["simulation"]["price_model"] == "book"
    strategies = metrics["strategies"]
    assert list(strategies) == ["twap", "passive", "optimal", "optimal-continuous", "agent"]
    for m in strategies.values():
        for key in ("is_mean", "is_std", "cost_mean", "cost_std", "is_mean_bps", "cost_mean_bps"):
            assert isinstance(m[key], float)
        assert set(m["savings_cost"]) >= {"avg_savings", "ci95_low", "win_rate", "var_95"}
        assert set(m["advantage_share"]) == {"menu", "continuous"}
        assert 0 <= m["passive_share"]["mean"] <= 1
    assert strategies["twap"]["savings_cost"]["avg_savings"] == 0.0
    assert strategies["twap"]["fill_rate"] is None  # TWAP posts no limit order
    assert strategies["passive"]["passive_share"]["mean"] > 0.9
    assert strategies["optimal"]["advantage_share"]["menu"]["value"] == pytest.approx(1.0)
    exact = metrics["exact"]
    assert exact["cost_twap"] == pytest.approx(10.2672, abs=1e-4)
    assert exact["cost_optimal"] == pytest.approx(-11.0454, abs=1e-4)
    assert exact["cost_optimal_continuous"] == pytest.approx(-11.3525, abs=1e-4)
    assert exact["advantage_bps"]["menu"] == pytest.approx(2.1313, abs=1e-4)
    assert strategies["twap"]["cost_mean_exact"] == exact["cost_twap"]
    agent = metrics["agents"]["agent"]
    assert agent["kind"] == "ddqn" and agent["action_set"] == "menu"
    assert agent["advantage_share"] == strategies["agent"]["advantage_share"]["menu"]
    # gap_captured means what it means on simulated markets: the paired share of the own set's
    for name, own in (("agent", "menu"), ("passive", "menu"), ("optimal-continuous", "continuous")):
        share, gap = strategies[name]["advantage_share"][own], strategies[name]["gap_captured"]
        assert gap["value"] == pytest.approx(share["value"], rel=1e-12)
        ratio = share["gap_bps"] / share["exact_gap_bps"]  # unit-free: $ there, bps here
        assert gap["gap"] / gap["exact_gap"] == pytest.approx(ratio, rel=1e-9)
    assert metrics["training"]["agent"]["updates"] > 0
    provenance = metrics["provenance"]
    assert provenance["agent"]["kind"] == "ddqn" and provenance["seeds"]["training"] == [42]
    assert provenance["market"]["settings"]["simulation"]["price_model"] == "book"
    report = (out / "report.md").read_text()
    assert "optimal-continuous" in report and "policy_map.png" in report
    # compare scores the run against its own action set's optimum on the same episodes
    shutil.copytree(out, tmp_path / "again")
    args = ["compare", str(out), str(tmp_path / "again"), "--output-dir", str(tmp_path / "c")]
    compared = runner.invoke(app, args)
    assert compared.exit_code == 0, compared.output
    row = json.loads((tmp_path / "c" / "compare.json").read_text())["rows"][0]
    assert row["share_of"] == "menu optimum"
    assert row["share_of_optimum"]["value"] == agent["advantage_share"]["value"]


@pytest.mark.parametrize(
    ("agent", "action_set"), [("ddqn", "menu"), ("ppo", "menu"), ("sac", "continuous")]
)
def test_every_agent_runs_on_the_book_and_evaluates_to_the_same_numbers(
    agent: str, action_set: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / agent
    metrics = _run(agent, run, 48, monkeypatch)
    entry = metrics["agents"]["agent"]
    assert entry["kind"] == agent and entry["action_set"] == action_set
    assert (run / "policy_map.png").is_file() and (run / "model.pt").is_file()
    # rl-exec evaluate RUN: the saved policy on the same test draws gives the run's numbers
    out = tmp_path / "evaluation"
    result = runner.invoke(app, ["evaluate", str(run), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    again = json.loads((out / "metrics.json").read_text())
    assert again["strategies"]["agent"] == metrics["strategies"]["agent"]
    assert again["training"]["agent"]["checkpoint"] == str(run / "model.pt")
    assert json.loads((run / "metrics.json").read_text()) == metrics  # the run is untouched


@pytest.mark.parametrize("agent", ["ddqn", "ppo"])  # both act on the menu
def test_a_book_agent_is_refused_where_it_cannot_act(
    agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _run(agent, run, 48, monkeypatch)
    menu = tmp_path / "menu3.yaml"
    menu.write_text("simulation:\n  price_model: book\nbook:\n  book_actions: [wait, market 1]\n")
    for market, says in ((menu, "book.book_actions has 2 actions"), (DEFAULT, "trading speed")):
        result = runner.invoke(app, ["evaluate", str(run), "--market", str(market)])
        assert result.exit_code == 2, result.output
        assert says in result.output
    assert not (run / "evaluations").exists()


def test_a_book_sac_agent_is_refused_on_another_action_box(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _run("sac", run, 48, monkeypatch)
    deeper = tmp_path / "deeper.yaml"
    deeper.write_text("simulation:\n  price_model: book\nbook:\n  max_depth: 8\n")
    result = runner.invoke(app, ["evaluate", str(run), "--market", str(deeper)])
    assert result.exit_code == 2, result.output
    assert "spans [-2, 8]" in result.output and "trained on [-2, 5]" in result.output
    menu = tmp_path / "menu.yaml"  # a menu of another length, the same box: SAC can act there
    menu.write_text("simulation:\n  price_model: book\nbook:\n  book_actions: [wait, market 2]\n")
    out = tmp_path / "elsewhere"
    args = ["evaluate", str(run), "--market", str(menu), "--output-dir", str(out)]
    result = runner.invoke(app, [*args, "--eval-episodes", "200"])
    assert result.exit_code == 0, result.output
    assert (out / "metrics.json").is_file()


def test_two_runs_with_one_seed_give_the_same_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run("ddqn", tmp_path / "a", 64, monkeypatch)
    second = _run("ddqn", tmp_path / "b", 64, monkeypatch)
    assert first["strategies"]["agent"] == second["strategies"]["agent"]


# --- rl-exec calibrate-book -------------------------------------------------------------------


def test_calibrate_book_writes_a_config_that_runs_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "book.yaml"
    result = runner.invoke(app, ["calibrate-book", str(SAMPLE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    settings, _ = load_settings(config_path=out, best_params_path=None, require_config=True)
    assert settings.simulation.price_model == "book"
    p = book_params(settings)
    assert p.spreads.tolist() == [1.0, 2.0] and p.N == 60
    before = out.read_text()
    again = runner.invoke(app, ["calibrate-book", str(SAMPLE), "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert out.read_text() == before
    forced = runner.invoke(app, ["calibrate-book", str(SAMPLE), "--out", str(out), "--overwrite"])
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize(("row", "column", "value"), [(3, "bid", "abc"), (5, "ask_size", "-1")])
def test_calibrate_book_names_the_file_row_and_column_of_bad_data(
    tmp_path: Path, row: int, column: str, value: str
) -> None:
    lines = SAMPLE.read_text().splitlines()[:400]
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "book.yaml"
    result = runner.invoke(app, ["calibrate-book", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: "), message
    assert "bad.csv" in message and column in message and str(row + 1) in message
    assert not out.exists()


def test_calibrate_book_on_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["calibrate-book", str(tmp_path / "none.csv"), "--out", "x.yaml"])
    assert result.exit_code == 2


# --- the tuner --------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["ddqn", "ppo", "sac"])
def test_a_tuner_trial_runs_on_the_book(agent: str, tmp_path: Path) -> None:
    from rl_order_execution.tuning import optimize

    settings = Settings(
        simulation={"price_model": "book", "time_horizon": 10},
        rl={"agent": agent},
        optimization={
            "storage": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "n_trials": 2,
            "tuning_episodes": 32,
            "report_interval": 16,
            "validation_episodes": 16,
            "batch_sizes": [32],
        },
        logging={"progress": False, "tensorboard": False},
    )
    result = optimize(settings, best_params_path=None, console=Console(file=io.StringIO()))
    assert result.finished and result.done == 2


# --- throughput -------------------------------------------------------------------------------


def test_throughput_is_measured() -> None:
    t = measure_throughput(batch=256, episodes=200, steps=20)
    assert t.env_steps_per_second > 0 and t.evaluation_seconds > 0
    assert t.evaluation_strategies == 5


def test_rl_exec_optimize_runs_a_trial_on_the_book(tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(
        "simulation:\n  price_model: book\n  time_horizon: 10\n"
        "rl:\n  learning_starts: 32\n  batch_size: 32\n"
        "logging:\n  progress: false\n  tensorboard: false\n"
        "optimization:\n  n_trials: 1\n  tuning_episodes: 32\n  report_interval: 16\n"
        f"  validation_episodes: 16\n  batch_sizes: [32]\n  storage: sqlite:///{tmp_path}/db.sqlite\n"
    )
    result = runner.invoke(app, ["optimize", "--config", str(config), "--no-write-best-params"])
    assert result.exit_code == 0, result.output
    assert "exact menu optimum" in result.output
