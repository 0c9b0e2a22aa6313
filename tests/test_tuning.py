"""The Optuna study: objective sign, pruning, failures, crash recovery, workers, storages."""

from __future__ import annotations

import glob
import io
import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from rl_order_execution import tuning
from rl_order_execution.agents.dqn import train
from rl_order_execution.agents.registry import AGENTS
from rl_order_execution.agents.training import NO_HOOKS, TrainHooks
from rl_order_execution.cli import app
from rl_order_execution.config import OptimizationSettings, Settings, SettingsError, load_settings
from rl_order_execution.config.identity import settings_market
from rl_order_execution.market import MarketParams
from rl_order_execution.tuning import (
    Objective,
    OptimizeResult,
    PruningHook,
    SurplusTrial,
    WorkerJob,
    defaults_key,
    fail_dead_trials,
    open_study,
    optimize,
    resolve_study_name,
    trial_settings,
    with_options,
    worker_main,
)

GOOD = {
    "lr": 1e-3,
    "batch_size": 16,
    "gamma": 1.0,
    "hidden_width": 32,
    "target_update": 20,
    "epsilon_decay": 0.95,
    "updates_per_step": 1.0,
    "n_envs": 8,
}
BAD = GOOD | {"lr": 1e-7}  # the network barely moves from its random initial policy
# BAD as rl.dqn settings: current settings that every trained trial should beat
BAD_DQN = {k: v for k, v in BAD.items() if k not in ("gamma", "hidden_width")} | {
    "hidden_sizes": [32, 32]
}


def tiny_data(
    storage: str, dqn: dict[str, Any] | None = None, **optimization: Any
) -> dict[str, Any]:
    """A market and budget small enough for a trial to train in a fraction of a second."""
    opt = {
        "storage": storage,
        "tuning_episodes": 48,
        "report_interval": 10,
        "validation_episodes": 50,
        "batch_sizes": [16],
        "n_envs_choices": [8],
        "hidden_widths": [16, 32],
        "lr_min": 1e-7,
        "lr_max": 1e-2,
        "epsilon_decay_min": 0.9,
        "target_update_min": 10,
        "target_update_max": 100,
        "pruner_startup_trials": 1,
        "pruner_warmup_episodes": 0,
        "heartbeat_interval": 1,
        "grace_period": 2,
    }
    base_dqn = {"learning_starts": 20, "memory_size": 5000, "n_envs": 8, "batch_size": 16}
    return {
        "simulation": {"time_horizon": 5, "risk_aversion": 3.0},
        "rl": {"dqn": base_dqn | (dqn or {})},
        "optimization": opt | optimization,
        "logging": {"progress": False, "tensorboard": False},
    }


def tiny(storage: str, dqn: dict[str, Any] | None = None, **optimization: Any) -> Settings:
    return Settings.model_validate(tiny_data(storage, dqn, **optimization))


def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'study.db'}"


def load(settings: Settings) -> optuna.Study:
    return open_study(settings.optimization, resolve_study_name(settings))


def enqueue(settings: Settings, *params: dict[str, Any]) -> None:
    study = load(settings)
    for p in params:
        study.enqueue_trial(p)


def quiet() -> Console:
    return Console(file=io.StringIO())


def run(settings: Settings, tmp_path: Path, workers: int = 1) -> OptimizeResult:
    return optimize(
        settings, workers=workers, best_params_path=tmp_path / "best.yaml", console=quiet()
    )


def states(study: optuna.Study) -> dict[TrialState, int]:
    return {s: n for s, n in tuning.trial_counts(study).items() if n}


def test_study_prunes_and_writes_best_params_that_load_settings_reads(tmp_path: Path) -> None:
    settings = tiny(sqlite(tmp_path), dqn=BAD_DQN, n_trials=4)  # current settings: untrained
    enqueue(settings, GOOD, BAD)
    result = run(settings, tmp_path)
    study = load(settings)
    trials = study.get_trials()
    assert result.finished and result.done == 4
    assert trials[1].state == TrialState.PRUNED  # stuck at its initial policy, below the median
    assert trials[2].user_attrs["defaults"] and trials[2].state == TrialState.COMPLETE  # unpruned
    steps = sorted(trials[1].intermediate_values)
    assert steps[0] == 10 and max(steps) < 48  # nominal episode counts; pruned before its 48
    assert result.best is not None and result.best_value == study.best_value
    path = tmp_path / "best.yaml"
    market = settings_market(settings)  # the file's entry is this agent's on this market
    entry = yaml.safe_load(path.read_text())["tuned"]["ddqn"][market]
    assert entry["study"] == study.study_name and entry["trial"] == study.best_trial.number
    config = write_config(tmp_path, {"simulation": settings.simulation.model_dump(mode="json")})
    loaded, applied = load_settings(config_path=config, best_params_path=path)
    best = study.best_trial.user_attrs["rl"]
    assert applied[0] == (f"tuned parameters for ddqn on market {market} used ({path})", "tuned")
    assert loaded.rl.dqn.lr == best["dqn"]["lr"] and loaded.rl.dqn.n_envs == best["dqn"]["n_envs"]
    assert loaded.rl.dqn.hidden_sizes == [study.best_trial.params["hidden_width"]] * 2
    assert loaded.rl.episodes == Settings().rl.episodes  # the tuning budget is not written
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".best")] == []


def test_objective_is_validation_savings_and_a_trained_agent_scores_higher(
    tmp_path: Path,
) -> None:
    settings = tiny(sqlite(tmp_path), n_trials=2, pruning=False)
    enqueue(settings, BAD, GOOD)
    run(settings, tmp_path)
    bad, good = load(settings).get_trials(states=(TrialState.COMPLETE,))
    assert good.value is not None and bad.value is not None
    assert good.value > bad.value + 100  # bps: the untrained policy loses heavily to TWAP
    assert load(settings).best_trial.number == good.number
    trial = trial_settings(settings, good.user_attrs["rl"])
    direct = train(trial, MarketParams.of(trial))
    assert good.value == direct.best_validation_bps  # exactly train's validation savings


def test_failed_trial_is_recorded_with_reason_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def flaky(settings: Settings, market: MarketParams, hooks: TrainHooks = NO_HOOKS) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("training diverged: the TD loss is not finite")
        return train(settings, market, hooks)

    monkeypatch.setitem(AGENTS, "ddqn", replace(AGENTS["ddqn"], train=flaky))
    settings = tiny(sqlite(tmp_path), n_trials=3, pruning=False)
    settings.logging.progress = True
    console = Console(record=True, width=200)
    result = optimize(settings, best_params_path=None, console=console)
    study = load(settings)
    assert states(study) == {TrialState.COMPLETE: 3, TrialState.FAIL: 1}
    failed = study.get_trials()[1]
    assert failed.state == TrialState.FAIL and failed.value is None
    assert failed.user_attrs["fail_reason"].startswith("FloatingPointError: training diverged")
    assert result.finished
    shown = console.export_text()
    assert "3/3 trials  pruned 0  failed 1  running 0  best" in shown  # the progress line
    assert "failed x1: FloatingPointError: training diverged" in shown


def test_worker_gives_up_after_consecutive_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(settings: Settings, market: MarketParams, hooks: TrainHooks = NO_HOOKS) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(AGENTS, "ddqn", replace(AGENTS["ddqn"], train=broken))
    settings = tiny(sqlite(tmp_path), n_trials=3, max_consecutive_failures=2)
    result = run(settings, tmp_path)
    assert not result.finished and result.best is None
    assert states(load(settings)) == {TrialState.FAIL: 2}
    assert not (tmp_path / "best.yaml").exists()


def test_trial_started_when_the_study_is_full_is_surplus() -> None:
    settings = tiny("sqlite://", n_trials=1)
    study = optuna.create_study(direction="maximize")
    study.ask()  # an earlier trial, still running
    late = study.ask()
    with pytest.raises(SurplusTrial):
        Objective(settings)(late)
    assert late.user_attrs["fail_reason"].startswith("SurplusTrial")


def test_pruning_hook_reports_nominal_steps_once_and_rejects_non_finite() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    hook = PruningHook(trial, interval=10)
    for episodes, bps in [(16, -3.0), (32, -1.0), (40, 0.5), (48, 0.7)]:
        hook(episodes, bps)
    assert study.get_trials()[0].intermediate_values == {10: -3.0, 30: -1.0, 40: 0.5}
    with pytest.raises(FloatingPointError):
        hook(56, float("nan"))


def test_same_settings_give_the_same_study(tmp_path: Path) -> None:
    first = tiny(sqlite(tmp_path / "a"), n_trials=2, pruning=False)
    second = tiny(sqlite(tmp_path / "b"), n_trials=2, pruning=False)
    run(first, tmp_path / "a")
    run(second, tmp_path / "b")
    a, b = load(first).get_trials(), load(second).get_trials()
    assert [(t.params, t.value) for t in a] == [(t.params, t.value) for t in b]


def test_study_name_carries_a_market_hash_unless_verbatim() -> None:
    base = tiny("sqlite://")
    other_seed = base.model_copy(
        update={"simulation": base.simulation.model_copy(update={"seed": 7})}
    )
    other_market = base.model_copy(
        update={"simulation": base.simulation.model_copy(update={"risk_aversion": 1.0})}
    )
    name = resolve_study_name(base)
    assert name.startswith("rl-order-execution-") and len(name) == len("rl-order-execution-") + 8
    assert resolve_study_name(other_seed) == name
    assert resolve_study_name(other_market) != name
    verbatim = tiny("sqlite://", study_name_includes_market_hash=False)
    assert resolve_study_name(verbatim) == "rl-order-execution"
    chosen = with_options(base, study_name="mine", study_name_includes_market_hash=False)
    assert resolve_study_name(chosen) == "mine"
    assert resolve_study_name(with_options(base, study_name="mine")) == f"mine-{name[-8:]}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr_min": 0.01, "lr_max": 0.001}, "lr_min must be <= lr_max"),
        ({"target_update_min": 500, "target_update_max": 50}, "target_update_min"),
        ({"updates_per_step_min": 8.0, "updates_per_step_max": 2.0}, "updates_per_step_min"),
        ({"heartbeat_interval": 60, "grace_period": 60}, "grace_period must exceed"),
        ({"n_envs_choices": [8, 8]}, "distinct"),
        ({"hidden_widths": [0]}, "between 1 and 4096"),
        ({"storage": "db/optuna.db"}, "database URL"),
    ],
)
def test_invalid_search_space_is_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OptimizationSettings(**changes)


def test_options_are_validated_before_any_trial(tmp_path: Path) -> None:
    settings = tiny(sqlite(tmp_path))
    with pytest.raises(SettingsError, match=r"optimization\.n_trials"):
        optimize(settings, n_trials=0, console=quiet())
    with pytest.raises(SettingsError, match="workers"):
        optimize(settings, workers=0, console=quiet())
    dqn = settings.rl.dqn
    small_memory = settings.model_copy(
        update={
            "rl": settings.rl.model_copy(update={"dqn": dqn.model_copy(update={"memory_size": 8})})
        }
    )
    with pytest.raises(SettingsError, match="memory_size"):
        optimize(small_memory, console=quiet())


# --- processes and storages -----------------------------------------------------------------


def wait_for_reporting_trial(settings: Settings, timeout: float = 120.0) -> FrozenTrial:
    """Poll the storage until a running trial has reported a validation (it is mid-trial)."""
    study = load(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(states=(TrialState.RUNNING,)):
            if trial.intermediate_values:
                return trial
        time.sleep(0.05)
    raise AssertionError("no trial started reporting in time")


def test_killed_worker_trial_is_retried_and_resume_finishes_exactly(tmp_path: Path) -> None:
    settings = tiny(sqlite(tmp_path), n_trials=2, pruning=False, tuning_episodes=400)
    load(settings)  # create the study before the worker starts
    context = multiprocessing.get_context("spawn")
    worker = context.Process(
        target=worker_main, args=(WorkerJob(settings, resolve_study_name(settings), 0),)
    )
    worker.start()
    killed = wait_for_reporting_trial(settings)
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    result = run(settings, tmp_path)
    study = load(settings)
    assert result.finished
    assert states(study) == {TrialState.COMPLETE: 2, TrialState.FAIL: 1}
    assert study.get_trials()[killed.number].state == TrialState.FAIL
    retried = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == killed.number]
    assert [t.state for t in retried] == [TrialState.COMPLETE]
    assert retried[0].params == killed.params


def assert_two_workers_fill_the_study(settings: Settings, tmp_path: Path) -> None:
    result = run(settings, tmp_path, workers=2)
    study = load(settings)
    assert result.worker_exit_codes == [0, 0]
    assert result.finished and result.done == settings.optimization.n_trials
    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) == settings.optimization.n_trials
    assert states(study).keys() <= {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}
    assert {t.user_attrs["worker"] for t in done} <= {0, 1}


def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    assert_two_workers_fill_the_study(tiny(sqlite(tmp_path), n_trials=4), tmp_path)


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_server_user(folder: Path) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user, who owns the folder."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to run the server")
    os.chown(folder, user.pw_uid, user.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 in a temporary folder."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL not installed (/usr/lib/postgresql/*/bin/initdb missing)")
    pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install psycopg2-binary")
    folder = Path(tempfile.mkdtemp(prefix="rl-exec-pg-"))
    prefix, data, port = _as_server_user(folder), str(folder / "data"), _free_port()
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", data, "-w"]
    subprocess.run(
        [*pg_ctl, "-l", str(folder / "log"), "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(postgres_url: str, tmp_path: Path) -> None:
    assert_two_workers_fill_the_study(tiny(postgres_url, n_trials=4), tmp_path)


# --- the current settings as the bar to beat; Ctrl-C ------------------------------------------


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_current_settings_are_scored_first_and_never_written(tmp_path: Path) -> None:
    settings = tiny(sqlite(tmp_path), n_trials=1)
    console = Console(record=True, width=300)
    result = optimize(settings, best_params_path=tmp_path / "best.yaml", console=console)
    (first,) = load(settings).get_trials()
    assert first.state == TrialState.COMPLETE and first.params == {}
    assert first.user_attrs["defaults"] == first.user_attrs["rl_key"] == defaults_key(settings)
    trial = trial_settings(settings, {})
    assert first.value == train(trial, MarketParams.of(trial)).best_validation_bps
    assert result.best_params_path is None and not (tmp_path / "best.yaml").exists()
    assert "not written: no trial beats the" in console.export_text()


def test_best_params_are_written_only_when_they_beat_the_current_settings(tmp_path: Path) -> None:
    data = tiny_data(sqlite(tmp_path), dqn=BAD_DQN, n_trials=2, pruning=False)
    settings = Settings.model_validate(data)
    enqueue(settings, GOOD)  # trial 0; the current (BAD) settings become trial 1
    path = tmp_path / "best.yaml"
    console = Console(record=True, width=300)
    result = optimize(settings, best_params_path=path, console=console)
    good, current = load(settings).get_trials()
    assert current.user_attrs["defaults"] and good.value is not None and current.value is not None
    assert good.value > current.value and result.best_params_path == path
    shown = console.export_text()
    entry = f"tuned parameters for ddqn on market {settings_market(settings)}"
    assert f"wrote {path} ({entry}): trial #0 scores {good.value:.2f} bps on validation" in shown
    assert f"vs the {current.value:.2f} bps for the current settings (trial #1)" in shown
    written = path.read_text()
    # rerun with the same --n-trials, now reading the file: no new trial, nothing rewritten
    reread, _ = load_settings(config_path=write_config(tmp_path, data), best_params_path=path)
    console = Console(record=True, width=300)
    again = optimize(reread, best_params_path=path, console=console)
    assert len(load(settings).get_trials()) == 2 and again.best_params_path is None
    assert path.read_text() == written
    assert f"no trial beats the {good.value:.2f} bps for the current settings (trial #0)" in (
        console.export_text()
    )


def test_the_discount_is_searched_only_when_asked() -> None:
    study = optuna.create_study(direction="maximize")
    off = tiny("sqlite://").optimization
    on = off.model_copy(update={"search_gamma": True})
    assert "gamma" not in AGENTS["ddqn"].suggest(study.ask(), off)
    trial = study.ask()
    assert off.gamma_min <= AGENTS["ddqn"].suggest(trial, on)["gamma"] <= off.gamma_max
    assert "gamma" in trial.params


def test_ctrl_c_during_optimize_prints_one_line_and_records_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(settings: Settings, market: MarketParams, hooks: TrainHooks = NO_HOOKS) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setitem(AGENTS, "ddqn", replace(AGENTS["ddqn"], train=interrupted))
    monkeypatch.chdir(tmp_path)
    data = tiny_data(sqlite(tmp_path), n_trials=2)
    args = ["optimize", "--config", str(write_config(tmp_path, data)), "--no-best-params"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "Ctrl-C" in line]
    assert len(lines) == 1 and "the same command resumes the study" in lines[0]
    (trial,) = load(Settings.model_validate(data)).get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "KeyboardInterrupt: stopped by Ctrl-C"


# --- dead workers and simultaneous first starts ----------------------------------------------


def test_resume_fails_and_retries_a_running_trial_that_never_had_a_heartbeat(
    tmp_path: Path,
) -> None:
    settings = tiny(sqlite(tmp_path), n_trials=3, pruning=False)
    run(with_options(settings, n_trials=2), tmp_path)
    study = load(settings)
    dead = study.ask()  # RUNNING, and no worker ever recorded a heartbeat for it
    assert fail_dead_trials(study) == []  # it started just now: its worker may be alive
    started = datetime.now() - timedelta(seconds=settings.optimization.grace_period + 60)
    with tuning.make_storage(settings.optimization).engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE trials SET datetime_start = :t WHERE trial_id = :i"),
            {"t": started, "i": dead._trial_id},
        )
    result = run(settings, tmp_path)
    study = load(settings)
    assert result.finished and result.done == 3
    assert states(study) == {TrialState.COMPLETE: 3, TrialState.FAIL: 1}  # nothing RUNNING
    assert study.get_trials()[dead.number].state == TrialState.FAIL
    retried = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == dead.number]
    assert [t.state for t in retried] == [TrialState.COMPLETE]


def start_together(tmp_path: Path, storage: str, processes: int, n_trials: int) -> None:
    """`rl-exec optimize` started `processes` times at once on one fresh storage."""
    data = tiny_data(storage, n_trials=n_trials, pruning=False)
    config = write_config(tmp_path, data)
    command = [sys.executable, "-m", "rl_order_execution", "optimize", "--config", str(config)]
    command += ["--no-best-params", "--no-write-best-params"]
    env = os.environ | {"RL_LOGGING__PROGRESS": "false"}
    started = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outputs = [p.communicate(timeout=55)[0] for p in started]
    for process, output in zip(started, outputs, strict=True):
        assert process.returncode == 0, output
    settings = Settings.model_validate(data)
    assert optuna.get_all_study_names(storage) == [resolve_study_name(settings)]
    study = load(settings)
    done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) == n_trials
    assert TrialState.RUNNING not in states(study)
    assert sum("defaults" in t.user_attrs for t in study.get_trials()) == 1


def test_four_optimize_processes_started_together_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    start_together(tmp_path, sqlite(tmp_path), processes=4, n_trials=4)


def test_four_optimize_processes_started_together_on_a_fresh_postgresql_database(
    postgres_url: str, tmp_path: Path
) -> None:
    start_together(tmp_path, postgres_url, processes=4, n_trials=4)


def test_market_hash_of_an_unchanged_market_survives_new_settings() -> None:
    """Settings added since the first edition count only when set, so old studies keep their
    names (hashes recorded with the first edition's code)."""
    from rl_order_execution.config import SimulationSettings
    from rl_order_execution.tuning.study import market_hash

    assert market_hash(SimulationSettings()) == "30eaf23c"
    ou = SimulationSettings(price_model="ou", risk_aversion=0.0, volatility=0.004)
    assert market_hash(ou) == "da23ae9a"
    assert market_hash(SimulationSettings(price_model="jump")) != "30eaf23c"
    assert market_hash(SimulationSettings(volume_profile="u_shape")) != "30eaf23c"
    assert market_hash(SimulationSettings(seed=7)) == "30eaf23c"
