"""Historical replay: real bars stepped like the simulated market, split by time without
look-ahead, with the references and the per-session report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rl_order_execution.agents.validation import Validator
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.data import DataError
from rl_order_execution.evaluation import evaluate, rollout
from rl_order_execution.market import MarketParams, MarketState, VecExecutionEnv, observe
from rl_order_execution.strategies import (
    CALIBRATED,
    HINDSIGHT,
    TWAP,
    VWAP,
    ScheduleStrategy,
    replay_references,
)
from rl_order_execution.strategies.replay import calibrated_trades

runner = CliRunner()
MARKET_FILE = Path(__file__).parents[1] / "benchmarks" / "markets" / "replay_eurusd.yaml"


def _write_bars(
    path: Path,
    closes: list[list[float]],
    volumes: list[list[float]] | None = None,
    quotes: bool = False,
) -> Path:
    """One session per list, on consecutive UTC dates, hourly bars from 09:00."""
    header = ["timestamp", "close", *(["volume"] if volumes else [])]
    header += ["bid", "ask"] if quotes else []
    lines = [",".join(header)]
    for day, session in enumerate(closes):
        for i, close in enumerate(session):
            row = [f"2024-03-{day + 1:02d}T{9 + i:02d}:00:00Z", repr(float(close))]
            if volumes:
                row.append(repr(float(volumes[day][i])))
            if quotes:
                row += [repr(float(close) - 0.01 * (i + 1)), repr(float(close) + 0.01 * (i + 1))]
            lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def _random_bars(tmp_path: Path, sessions: int = 10, size: int = 6, quotes: bool = False) -> Path:
    rng = np.random.default_rng(7)
    closes = [list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, size)))) for _ in range(sessions)]
    volumes = [list(rng.uniform(1, 30, size)) for _ in range(sessions)]
    return _write_bars(tmp_path / "bars.csv", closes, volumes, quotes)


def _settings(path: Path, replay: dict[str, Any] | None = None, **simulation: Any) -> Settings:
    sim = {"price_model": "replay", "time_horizon": 4, "total_shares": 100.0} | simulation
    section = {"path": str(path)} | (replay or {})
    return Settings.model_validate({"simulation": sim, "replay": section})


def _market(path: Path, replay: dict[str, Any] | None = None, **simulation: Any) -> MarketParams:
    s = _settings(path, replay, **simulation)
    return MarketParams.from_settings(s.simulation, s.replay)


ABSOLUTE = {"impact": "absolute"}


def test_a_constant_price_window_costs_exactly_the_impact_for_any_schedule(
    tmp_path: Path,
) -> None:
    """IS = alpha Q^2 / 2 + sum_k (beta_k - alpha/2) n_k^2 when every close is equal ($ impact:
    relative impact has no volatility to scale by on such a file)."""
    rng = np.random.default_rng(3)
    closes = [[50.0] * 6 for _ in range(10)]
    volumes = [list(rng.uniform(0.5, 40, 6)) for _ in range(10)]
    p = _market(_write_bars(tmp_path / "flat.csv", closes, volumes), ABSOLUTE)
    assert p.replay is not None
    assert (p.alpha, p.beta, p.lam) == (0.01, 0.05, 0.1)  # the settings' own $ parameters
    windows = p.replay.test
    assert np.ptp(windows.beta) > 0  # the bars' volume moves beta_k
    odd = ScheduleStrategy("odd", np.array([70.0, 0.0, 5.0, 25.0]))
    random = [ScheduleStrategy(f"random-{i}", rng.dirichlet(np.ones(4)) * p.Q) for i in range(3)]
    strategies = [*replay_references(p, windows), odd, *random]
    ev = evaluate(p, strategies, windows.shocks())
    for name, tr in ev.trajectories.items():
        expected = p.alpha * p.Q**2 / 2 + ((windows.beta - p.alpha / 2) * tr.n**2).sum(axis=1)
        np.testing.assert_allclose(tr.shortfall(p), expected, rtol=1e-12, err_msg=name)


def test_a_file_without_price_movement_is_refused_under_relative_impact(tmp_path: Path) -> None:
    path = _write_bars(tmp_path / "flat.csv", [[50.0] * 6 for _ in range(10)], [[5.0] * 6] * 10)
    with pytest.raises(DataError, match="no price movement") as refused:
        _market(path)
    assert "replay.impact: absolute" in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


@pytest.mark.parametrize("impact", ["absolute", "relative"])
def test_replayed_rewards_match_a_hand_computation(tmp_path: Path, impact: str) -> None:
    """Training volumes all 10 (vbar 10); the test window's closes and volumes are known, so
    every price, beta_k and reward of TWAP is computed here by hand (in either unit, beta_k is
    beta vbar / clip(u, ...), beta being beta_k at the mean bar)."""
    train = [[100.0, 100.5, 100.2, 100.4] for _ in range(6)]
    closes = [*train, [10.0, 10.1, 9.9, 10.2], [10.0, 10.1, 9.9, 10.2], [20.0, 20.2, 19.8, 20.6]]
    volumes = [[10.0] * 4 for _ in range(8)] + [[10.0, 20.0, 5.0, 0.5]]
    file = _write_bars(tmp_path / "known.csv", closes, volumes)
    p = _market(file, {"impact": impact}, total_shares=100.0)
    assert p.replay is not None
    assert [len(s.sessions) for s in p.replay.splits] == [5, 2, 2]
    test = p.replay.test
    assert len(test) == 2
    last = test.rows(1, 2)
    Q, P0, a, b, lam = p.Q, p.P0, p.alpha, p.beta, p.lam
    if impact == "absolute":
        assert (a, b, lam, p.V) == (0.01, 0.05, 0.1, 2000.0)
    beta_k = [b, b / 2, 2 * b, 10 * b]  # beta vbar / clip(u, vbar/10, ...)
    np.testing.assert_allclose(last.beta[0], beta_k)
    path = [P0 * c / 20.0 for c in (20.0, 20.2, 19.8, 20.6)]
    np.testing.assert_allclose(last.path(P0)[0], path)
    q, rewards = Q, []
    for k in range(4):
        n = q / (4 - k)
        S = path[k] - a * (Q - q)
        px = S - beta_k[k] * n
        rewards.append((n * (px - P0) - lam * q * q / Q) * 1e4 / (Q * P0))
        q -= n
    tr = rollout(p, TWAP(), last.shocks())
    np.testing.assert_allclose(tr.r[0], rewards, rtol=1e-12)
    # the market's volume in model units: v_k = (V / N) u / vbar
    np.testing.assert_allclose(last.volume[0], p.V / 4 * np.array([1.0, 2.0, 0.5, 0.05]))
    # the vectorised env, stepping the same window, pays the same rewards
    env = VecExecutionEnv(1, p)
    env.reset(seed=0)
    env._state.windows, env._state.window = last, np.zeros(1, dtype=np.int64)
    got = [float(env.step(np.array([2]))[1][0]) for _ in range(4)]
    np.testing.assert_allclose(got, rewards, rtol=1e-12)


def test_training_validation_and_test_never_share_a_session(tmp_path: Path) -> None:
    s = _settings(_random_bars(tmp_path))
    p = MarketParams.from_settings(s.simulation, s.replay)
    assert p.replay is not None
    train, validation, test = p.replay.splits
    last_train = train.sessions[-1].stop
    assert validation.sessions[0].start >= last_train
    assert test.sessions[0].start >= validation.sessions[-1].stop
    # training draws every window of the training sessions, and only those
    env = VecExecutionEnv(64, p)
    env.reset(seed=1)
    seen = set()
    for _ in range(40):
        seen.update(env._state.window.tolist())
        env.step(np.full(64, 6))  # 5x TWAP: episodes end early and draw new windows
    assert seen == set(range(len(p.replay.train)))
    assert p.replay.train.start.max() + 4 <= last_train
    # validation: the validation sessions' windows, at multiples of the stride (N)
    validator = Validator.from_settings(s, MarketParams.of(s))
    assert validator.shocks.windows is p.replay.validation
    assert set(validation.windows(4, 4)[1].tolist()) == set(p.replay.validation.start.tolist())
    # sigma from the training sessions only: the test bars do not move it
    assert p.sigma == pytest.approx(p.replay.calibration.sigma)


def test_the_hindsight_schedule_bounds_every_strategy_on_every_window(tmp_path: Path) -> None:
    p = _market(_random_bars(tmp_path, sessions=12, size=8), time_horizon=5)
    assert p.replay is not None
    windows = p.replay.test
    rng = np.random.default_rng(0)
    others = [ScheduleStrategy(f"random-{i}", rng.dirichlet(np.ones(5)) * p.Q) for i in range(5)]
    ev = evaluate(p, [*replay_references(p, windows), *others], windows.shocks())
    best = ev.outcomes[HINDSIGHT].cost
    for name, o in ev.outcomes.items():
        assert np.all(o.cost >= best - 1e-9 * p.notional), name
    metrics = ev.metrics()
    assert metrics[CALIBRATED].exact_gap is None  # no exact optimum share on real bars


def test_the_calibrated_optimum_never_reads_the_test_windows_volumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    closes = [list(100 + np.cumsum(rng.normal(0, 0.2, 6))) for _ in range(10)]
    volumes = [list(rng.uniform(1, 30, 6)) for _ in range(10)]
    p = _market(_write_bars(tmp_path / "a.csv", closes, volumes))
    volumes[-1] = [1000.0, 1.0, 1000.0, 1.0, 1000.0, 1.0]  # a test session's own volumes
    q = _market(_write_bars(tmp_path / "b.csv", closes, volumes))
    assert p.replay is not None and q.replay is not None
    assert not np.array_equal(p.replay.test.beta, q.replay.test.beta)
    np.testing.assert_array_equal(
        calibrated_trades(p, p.replay.test), calibrated_trades(q, q.replay.test)
    )
    # VWAP follows the training profile, not the window's volumes either
    a = rollout(p, VWAP(), p.replay.test.shocks()).n
    b = rollout(q, VWAP(), q.replay.test.shocks()).n
    np.testing.assert_array_equal(a, b)


def test_the_spread_feature_reads_the_quotes_of_the_bar_seen(tmp_path: Path) -> None:
    path = _random_bars(tmp_path, quotes=True)
    p = _market(path, extra_features=["volume_remaining", "spread"])
    assert p.replay is not None and p.obs_dim == 6
    s = MarketState.initial(p, len(p.replay.test), p.replay.test)
    s.k[:] = 2
    sigma = p.replay.calibration.sigma
    rows = p.replay.test.start + 2
    from rl_order_execution.data import load_bars

    bars = load_bars(path)
    assert bars.ask is not None and bars.bid is not None
    expected = (bars.ask[rows] - bars.bid[rows]) / (bars.close[rows] * sigma)
    np.testing.assert_allclose(observe(p, s)[:, 5], expected, rtol=1e-6)
    np.testing.assert_allclose(observe(p, s)[:, 4], p.replay.test.volume_left[:, 2], rtol=1e-6)
    without = tmp_path / "without"
    without.mkdir()
    with pytest.raises(DataError, match="spread feature needs bid and ask"):
        _market(_random_bars(without), extra_features=["spread"])


def test_ask_below_bid_is_an_error_naming_the_row(tmp_path: Path) -> None:
    path = _random_bars(tmp_path, quotes=True)
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[3], cells[4] = cells[4], cells[3]
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 5 \(line 6\), columns bid/ask: ask .* is below bid"):
        _market(path, extra_features=["spread"])


def test_replay_settings_that_cannot_work_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="longer than every session"):
        _market(_random_bars(tmp_path), time_horizon=7)


def test_simulated_markets_refuse_replay_only_settings() -> None:
    with pytest.raises(ValueError, match="spread feature needs bid and ask"):
        Settings.model_validate({"simulation": {"extra_features": ["spread"]}})
    with pytest.raises(ValueError, match="volume_profile must be flat"):
        Settings.model_validate(
            {"simulation": {"price_model": "replay", "volume_profile": "u_shape"}}
        )
    with pytest.raises(DataError, match=r"needs replay\.path"):
        s = Settings.model_validate({"simulation": {"price_model": "replay"}})
        MarketParams.from_settings(s.simulation, s.replay)


def test_rl_exec_run_on_the_bundled_eurusd_market(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--config", str(MARKET_FILE), "--output-dir", str(out), "--no-best-params"]
    env = {"RL_RL__EPISODES": "40", "RL_RL__N_ENVS": "8", "RL_RL__LEARNING_STARTS": "50"}
    result = runner.invoke(app, [*args], env=env)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    replay = metrics["replay"]
    splits = {s["name"]: s for s in replay["splits"]}
    assert [splits[n]["sessions"] for n in ("train", "validation", "test")] == [155, 52, 52]
    assert splits["test"]["windows"] == metrics["episodes"] == 52
    assert splits["train"]["last"] < splits["validation"]["first"] <= splits["validation"]["last"]
    assert splits["validation"]["last"] < splits["test"]["first"]
    assert len(replay["sessions"]) == 52
    names = set(metrics["strategies"])
    assert names == {"twap", "vwap", CALIBRATED, HINDSIGHT, "agent"}
    assert "hindsight_captured" in metrics["strategies"]["agent"]
    assert "gap_captured" not in metrics["strategies"]["agent"]
    day = replay["sessions"][0]
    assert set(day["cost_bps"]) == names
    report = (out / "report.md").read_text()
    assert "## Per test session" in report and "2017-10-18" in report
    assert not (out / "frontier.png").exists()
    assert math.isfinite(metrics["strategies"]["agent"]["cost_mean_bps"])
    # relative impact by default: what it ran with, and TWAP's temporary cost at the mean bar
    assert replay["impact"] == "relative"
    assert replay["sigma_day"] == pytest.approx(replay["sigma"] * math.sqrt(23.46451612903226))
    assert replay["eta"] == pytest.approx(0.142 * 0.05**-0.4) == pytest.approx(0.4707, abs=1e-4)
    assert replay["gamma"] == 0.314
    expected = replay["eta"] * replay["sigma_day"] * 0.05 * 1e4
    assert replay["twap_temporary_cost_bps"] == pytest.approx(expected, rel=1e-12)
    assert 0.5 < replay["twap_temporary_cost_bps"] < 5  # an FX order of 5 %: a few bp
    assert replay["alpha"] > 0 and replay["lambda"] > 0
    assert "Impact in relative units" in report


def test_a_csv_read_in_blocks_names_the_right_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are parsed a block at a time (bounded memory); an error still names its row, and
    time must increase across block boundaries too."""
    import rl_order_execution.data.bars as bars_module
    from rl_order_execution.data import load_bars

    monkeypatch.setattr(bars_module, "CHUNK_ROWS", 3)
    path = _random_bars(tmp_path, sessions=3, size=4)
    whole = load_bars(path)
    assert len(whole) == 12 and whole.volume is not None
    lines = path.read_text().splitlines()
    bad = lines.copy()
    bad[8] = bad[8].replace(bad[8].split(",")[1], "-1.0")
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(DataError, match=r"row 8 \(line 9\), column 'close'"):
        load_bars(path)
    swapped = lines.copy()
    swapped[6], swapped[7] = swapped[7], swapped[6]  # rows 6 and 7: across the block edge
    path.write_text("\n".join(swapped) + "\n")
    with pytest.raises(DataError, match=r"row 7 \(line 8\).*earlier than"):
        load_bars(path)


def test_optimize_on_replayed_bars_names_its_study_by_the_data(tmp_path: Path) -> None:
    from rl_order_execution.config import ReplaySettings, SimulationSettings
    from rl_order_execution.tuning.study import market_hash

    sim = SimulationSettings(price_model="replay")
    one = market_hash(sim, ReplaySettings(path="a.csv"))
    assert one != market_hash(sim, ReplaySettings(path="b.csv"))
    assert one != market_hash(sim, ReplaySettings(path="a.csv", train_fraction=0.5))
    assert market_hash(SimulationSettings(), ReplaySettings(path="a.csv")) == "30eaf23c"
    config = tmp_path / "replay.yaml"
    config.write_text(
        MARKET_FILE.read_text()
        + "optimization:\n  n_trials: 2\n  tuning_episodes: 30\n  report_interval: 15\n"
        + f"  storage: sqlite:///{tmp_path / 'study.db'}\n"
        + "rl:\n  n_envs: 8\n  learning_starts: 50\n"
    )
    args = ["optimize", "--config", str(config), "--no-best-params", "--no-write-best-params"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "calibrated optimum on the same windows" in result.output


def test_bars_without_volume_replay_with_flat_impact(tmp_path: Path) -> None:
    """No volume column: beta_k = beta, v_k = V / N, no VWAP reference (it would be TWAP)."""
    rng = np.random.default_rng(11)
    closes = [list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 6)))) for _ in range(10)]
    p = _market(_write_bars(tmp_path / "novolume.csv", closes))
    assert p.replay is not None and not p.has_volume
    assert np.all(p.replay.test.beta == p.beta)
    names = [s.name for s in replay_references(p, p.replay.test)]
    assert names == ["twap", CALIBRATED, HINDSIGHT]


@pytest.mark.parametrize("agent", ["ddqn", "ppo"])
def test_a_replayed_checkpoint_evaluates_to_the_same_numbers(tmp_path: Path, agent: str) -> None:
    bars = _random_bars(tmp_path, sessions=12, size=6)
    config = tmp_path / "replay.yaml"
    config.write_text(
        "simulation:\n  price_model: replay\n  time_horizon: 4\n  total_shares: 100\n"
        f"replay:\n  path: {bars}\n  stride: 2\n"
        "rl:\n  episodes: 40\n  n_envs: 8\n  learning_starts: 50\n  eval_interval: 20\n"
        f"  agent: {agent}\n"
    )
    out, again = tmp_path / "run", tmp_path / "evaluated"
    first = runner.invoke(
        app, ["run", "--config", str(config), "--output-dir", str(out), "--no-best-params"]
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(
        app, ["evaluate", "--checkpoint", str(out / "model.pt"), "--output-dir", str(again)]
    )
    assert second.exit_code == 0, second.output
    a = json.loads((out / "metrics.json").read_text())
    b = json.loads((again / "metrics.json").read_text())
    assert a["strategies"] == b["strategies"]
    assert a["replay"] == b["replay"]
    # stride 2 on sessions of 6 bars: test windows start at bars 0 and 2 of each session
    assert a["episodes"] == 2 * a["replay"]["splits"][2]["sessions"]


def test_vwap_deviation_on_replayed_bars_uses_each_windows_own_volume(tmp_path: Path) -> None:
    p = _market(_random_bars(tmp_path), extra_features=["vwap_deviation"])
    assert p.replay is not None
    windows = p.replay.test
    s = MarketState.initial(p, len(windows), windows)
    S, n_steps = [s.S.copy()], 3
    from rl_order_execution.market import market_step

    for _ in range(n_steps):
        market_step(p, s, TWAP()(p, s), windows.shocks().steps()[0])
        S.append(s.S.copy())
    v = windows.volume[:, :n_steps]
    vwap = (v * np.array(S[:n_steps]).T).sum(axis=1) / v.sum(axis=1)
    expected = (vwap - S[n_steps]) / (p.P0 * p.sigma)
    np.testing.assert_allclose(observe(p, s)[:, 4], expected, rtol=1e-5)


def test_split_settings_that_leave_a_split_empty_are_refused() -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        Settings.model_validate({"replay": {"validation_fraction": 0}})
    with pytest.raises(ValueError, match="train_end and validation_end together"):
        Settings.model_validate({"replay": {"train_end": "2017-06-30"}})
    with pytest.raises(ValueError, match="must be < 1"):
        Settings.model_validate({"replay": {"train_fraction": 0.8, "validation_fraction": 0.2}})


def test_many_test_sessions_print_the_extremes_and_report_every_one(tmp_path: Path) -> None:
    from rich.console import Console

    from rl_order_execution.evaluation.replay import ImpactSummary, ReplaySummary, SessionCosts
    from rl_order_execution.reporting.tables import MAX_SESSION_ROWS, sessions_table

    days = [
        SessionCosts(f"2024-01-{i % 28 + 1:02d}", 1, {"twap": 100.0, "agent": 100.0 + (i % 7) - 3})
        for i in range(100)
    ]
    impact = ImpactSummary("relative", 0.01, 0.47, 0.314, 1e-5, 1e-3, 2.35)
    summary = ReplaySummary("x.csv", 0.001, None, 4, impact, [], days)
    table = sessions_table(summary, ["agent"])
    assert table.row_count == MAX_SESSION_ROWS
    console = Console(record=True, width=200)
    console.print(table)
    text = " ".join(console.export_text().split())
    won = sum(d.cost_bps["agent"] < 100.0 for d in days)
    assert f"agent won {won} of 100 sessions" in text


def test_split_fractions_are_exact_decimals() -> None:
    """0.7 + 0.1 is 0.7999... in floats: the validation session must not be lost to rounding."""
    import datetime as dt

    from rl_order_execution.data import Session, SplitSpec, split_sessions

    days = [Session(dt.date(2024, 1, 1 + i), 10 * i, 10 * i + 10) for i in range(10)]
    train, validation, test = split_sessions(days, 4, SplitSpec(0.7, 0.1), "x")
    assert [len(s.sessions) for s in (train, validation, test)] == [7, 1, 2]


def test_timestamps_parquet_index_epochs_and_quotes(tmp_path: Path) -> None:
    import pandas as pd

    from rl_order_execution.data import load_bars

    stamps = pd.date_range("2024-03-01 09:00", periods=6, freq="h", tz="UTC")
    frame = pd.DataFrame({"close": np.linspace(100, 101, 6), "volume": 5.0}, index=stamps)
    frame.index.name = "timestamp"
    frame.to_parquet(tmp_path / "indexed.parquet")  # the time column becomes the frame's index
    bars = load_bars(tmp_path / "indexed.parquet")
    assert len(bars) == 6 and str(bars.time[0]) == "2024-03-01T09:00:00.000000000"
    # epoch milliseconds are not seconds: a clear error, never dates wrapped into 1723
    ms = _write_bars(tmp_path / "ms.csv", [[100.0, 100.5]])
    text = ms.read_text().replace("2024-03-01T09:00:00Z", "1709283600000")
    ms.write_text(text.replace("2024-03-01T10:00:00Z", "1709287200000"))
    with pytest.raises(DataError, match=r"row 1 \(line 2\).*outside the years.*milliseconds"):
        load_bars(ms)
    # one garbled value among epoch seconds names its own row
    epochs = _write_bars(tmp_path / "epochs.csv", [[100.0, 100.5, 100.2]])
    lines = epochs.read_text().splitlines()
    lines[1] = lines[1].replace("2024-03-01T09:00:00Z", "1709283600")
    lines[2] = lines[2].replace("2024-03-01T10:00:00Z", "abc")
    lines[3] = lines[3].replace("2024-03-01T11:00:00Z", "1709290800")
    epochs.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\).*'abc' is not epoch seconds"):
        load_bars(epochs)
    # quotes are read (and checked) only when asked for
    quoted = _random_bars(tmp_path, quotes=True)
    rows = quoted.read_text().splitlines()
    cells = rows[2].split(",")
    cells[3] = ""
    rows[2] = ",".join(cells)
    quoted.write_text("\n".join(rows) + "\n")
    assert load_bars(quoted, quotes=False).bid is None
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'bid'"):
        load_bars(quoted)


def _figure_text(fig: Any) -> str:
    """Every title, label, tick-free text and legend entry of a figure, lower case."""
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return " ".join(texts).lower()


def test_replay_plots_speak_of_test_windows_never_of_shocks(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from rl_order_execution.reporting import plots

    p = _market(_random_bars(tmp_path, sessions=12, size=8), time_horizon=5)
    assert p.replay is not None
    ev = evaluate(p, replay_references(p, p.replay.test), p.replay.test.shocks())
    names = ["twap", VWAP().name, CALIBRATED]
    figures = [plots.execution_figure(ev, names), plots.savings_figure(ev, [CALIBRATED])]
    for fig in figures:
        text = _figure_text(fig)
        assert "test window" in text
        assert "shock" not in text and "episode" not in text, text
        plt.close(fig)


def test_the_vwap_without_our_impact_is_the_windows_own_for_every_strategy(
    tmp_path: Path,
) -> None:
    """Replayed mids are the bars' closes minus our permanent impact: added back, the VWAP is
    the bars' own, whatever the schedule; VWAP_mkt (MODEL.md) moves with our selling."""
    p = _market(_random_bars(tmp_path, sessions=12, size=8), time_horizon=5)
    assert p.replay is not None
    windows = p.replay.test
    front = ScheduleStrategy("front", np.array([0.6, 0.4, 0.0, 0.0, 0.0]) * p.Q)
    ev = evaluate(p, [TWAP(), front], windows.shocks())
    twap, early = ev.trajectories["twap"], ev.trajectories["front"]
    np.testing.assert_allclose(
        twap.market_vwap_ex_impact(p), early.market_vwap_ex_impact(p), rtol=1e-13
    )
    assert np.all(early.market_vwap(p) < twap.market_vwap(p))  # our own impact in VWAP_mkt


def test_the_replayed_bars_are_part_of_the_markets_identity(tmp_path: Path) -> None:
    """Two markets built from the same file version and settings are equal; another file makes
    another market, and so do other settings on the same file."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _random_bars(tmp_path / "a"), _random_bars(tmp_path / "b", sessions=11)
    first = _market(a)
    assert first.replay is not None and first == _market(a)
    assert _market(b) != first
    assert _market(a, {"stride": 2}) != first
