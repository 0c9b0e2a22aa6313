"""PPO and SAC resume like the Double DQN: a training continued from any checkpoint ends exactly
as the uninterrupted one (updates, validations, weights, evaluated cost, logged curves); the first
Ctrl-C stops at the next rollout's start with one line and exit 130; a run killed after a
checkpoint and resumed writes the uninterrupted run's metrics.

No difference had to be bounded: SB3's whole training state (networks, optimisers, counters, last
observations, replay buffer, pending log values, torch's, numpy's and the action space's
generators) is saved at a rollout's start, where PPO's rollout buffer is empty."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.agents.registry import agent_spec
from rl_order_execution.agents.training import TrainHooks, TrainResult
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.experiment import evaluate_strategies
from rl_order_execution.market import MarketParams
from rl_order_execution.runs.resume import RESUME_FILE
from rl_order_execution.strategies import TWAP, Strategy

SECTIONS: dict[str, dict[str, Any]] = {
    "ppo": {"n_envs": 16, "n_steps": 16, "batch_size": 64, "n_epochs": 2, "hidden_sizes": [16]},
    # learning starts after 150 episodes of uniform actions: the first checkpoint (at 100) falls
    # in the warm-up (the action space's generator), the later ones in learning (the replay)
    "sac": {
        "n_envs": 16,
        "batch_size": 32,
        "gradient_steps": 2,
        "hidden_sizes": [16],
        "learning_starts": 1500,
        "buffer_size": 2000,  # smaller than the run: the buffer wraps around
    },
}


def tiny(kind: str) -> Settings:
    """A 10-step market, small nets: 400 episodes train in a few seconds."""
    rl = {"agent": kind, "episodes": 400, "eval_interval": 40, "validation_episodes": 50}
    return Settings.model_validate(
        {"simulation": {"time_horizon": 10}, "rl": rl | {kind: SECTIONS[kind]}}
    )


class Scalars:
    """A ScalarLogger keeping every (tag, step, value) in order, as TensorBoard's file would."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, float]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if tag != "time/fps":  # wall-clock speed: differs between any two runs
            self.events.append((tag, step, float(value)))


class Recorder:
    """Checkpoints that keep every state saved (through torch.save, as resume.pt would), with how
    many scalars were logged by then; or that start from one saved state."""

    def __init__(self, start: bytes | None = None, logged: Scalars | None = None) -> None:
        self.start, self.logged = start, logged
        self.saved: list[tuple[int, bytes, int]] = []  # (episodes, state, scalars logged)

    def restore(self) -> dict[str, Any] | None:
        if self.start is None:
            return None
        state: dict[str, Any] = torch.load(io.BytesIO(self.start), weights_only=True)
        return state

    def reached(self, episodes: int, finished: bool, state: Callable[[], dict[str, Any]]) -> None:
        last = self.saved[-1][0] if self.saved else 0
        if episodes // 100 > last // 100 or finished:
            buffer = io.BytesIO()
            torch.save(state(), buffer)
            logged = len(self.logged.events) if self.logged is not None else 0
            self.saved.append((episodes, buffer.getvalue(), logged))


def evaluated_cost(settings: Settings, result: TrainResult) -> float:
    """The trained agent's mean risk-adjusted cost on 200 test episodes."""
    test = settings.model_copy(
        update={"evaluation": settings.evaluation.model_copy(update={"episodes": 200})}
    )
    strategies: list[Strategy] = [TWAP(), GreedyAgent(result.agent)]
    metrics = evaluate_strategies(test, MarketParams.of(test), strategies).metrics()
    return metrics["agent"].cost.mean_bps


@pytest.mark.numbers
@pytest.mark.parametrize("kind", ["ppo", "sac"])
def test_training_resumed_from_any_checkpoint_ends_exactly_as_uninterrupted(kind: str) -> None:
    settings = tiny(kind)
    p, spec = MarketParams.of(settings), agent_spec(kind)
    assert spec.resumable
    whole = spec.train(settings, p)
    logged = Scalars()
    recorder = Recorder(logged=logged)
    recorded = spec.train(settings, p, TrainHooks(logger=logged, checkpoints=recorder))
    assert recorded.history == whole.history  # saving changes nothing
    mine, theirs = recorded.agent.policy_state(), whole.agent.policy_state()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    episodes = [e for e, _, _ in recorder.saved]  # the first rollout start past each 100
    assert len(episodes) == 3 and all(100 <= e < 400 for e in episodes)
    assert recorded.updates > 0
    cost = evaluated_cost(settings, whole)
    for _, state, logged_before in recorder.saved:
        scalars = Scalars()
        hooks = TrainHooks(logger=scalars, checkpoints=Recorder(state))
        resumed = spec.train(settings, p, hooks)
        assert resumed.episodes == whole.episodes and resumed.updates == whole.updates
        assert resumed.history == whole.history
        assert resumed.best_validation_bps == whole.best_validation_bps
        mine, theirs = resumed.agent.policy_state(), whole.agent.policy_state()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
        assert evaluated_cost(settings, resumed) == cost
        assert scalars.events == logged.events[logged_before:]  # each step logged once, same


# --- the command line ----------------------------------------------------------------------------

TINY_ENV = {
    "RL_SIMULATION__TIME_HORIZON": "10",
    "RL_RL__VALIDATION_EPISODES": "50",
    "RL_RL__EVAL_INTERVAL": "40",
    "RL_RL__CHECKPOINT_INTERVAL": "40",
    "RL_LOGGING__PROGRESS": "false",
    "RL_RL__PPO__N_ENVS": "16",
    "RL_RL__PPO__N_STEPS": "16",
    "RL_RL__PPO__BATCH_SIZE": "64",
    "RL_RL__PPO__N_EPOCHS": "2",
    "RL_RL__PPO__HIDDEN_SIZES": "[16]",
    "RL_RL__SAC__N_ENVS": "16",
    "RL_RL__SAC__BATCH_SIZE": "32",
    "RL_RL__SAC__GRADIENT_STEPS": "1",
    "RL_RL__SAC__HIDDEN_SIZES": "[16]",
}
EPISODES = {"ppo": "1600", "sac": "400"}  # a few seconds of training each


def rl_exec(*args: str, cwd: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "rl_order_execution", *args]
    env = os.environ | TINY_ENV
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def saved_episodes(folder: Path) -> int:
    """Episodes of the training state in folder's resume file (0 when none yet)."""
    try:
        payload = torch.load(folder / RESUME_FILE, weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0
    return int(payload["episodes"]) if payload["state"] is not None else 0


def wait_for_checkpoint(process: subprocess.Popen[str], folder: Path, episodes: int) -> None:
    deadline = time.monotonic() + 60
    while saved_episodes(folder) < episodes:
        assert process.poll() is None, "training ended before it could be interrupted"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.01)


def results(folder: Path) -> dict[str, Any]:
    """metrics.json less what names the moment, the command or the wall-clock time."""
    metrics = json.loads((folder / "metrics.json").read_text())
    del metrics["provenance"]
    for record in metrics["training"].values():
        del record["seconds"]
    return dict(metrics)


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar of a run but the wall-clock speed, in the order read."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    tags = [tag for tag in events.Tags()["scalars"] if tag != "time/fps"]
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags}


def uninterrupted(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    args = ["run", "--agent", kind, "--no-best-params", "--episodes", EPISODES[kind]]
    result = CliRunner().invoke(app, [*args, "--eval-episodes", "200", "--output-dir", "whole"])
    assert result.exit_code == 0, result.output
    return tmp_path / "whole"


@pytest.mark.parametrize(("kind", "stop"), [("ppo", signal.SIGINT), ("sac", signal.SIGKILL)])
def test_a_stopped_run_resumes_to_the_uninterrupted_metrics_and_curves(
    kind: str, stop: signal.Signals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--agent", kind, "--no-best-params", "--episodes", EPISODES[kind])
    process = rl_exec("run", *args, "--eval-episodes", "200", "--output-dir", "run", cwd=tmp_path)
    wait_for_checkpoint(process, tmp_path / "run", 80)
    process.send_signal(stop)
    output = process.communicate(timeout=60)[0]
    if stop == signal.SIGINT:  # the first Ctrl-C: saved at the next rollout's start, one line
        assert process.returncode == 130, output
        lines = [line for line in output.splitlines() if "Ctrl-C" in line]
        assert len(lines) == 1 and lines[0].endswith("resume with: rl-exec run --resume run")
        assert "Traceback" not in output
        assert 80 <= saved_episodes(tmp_path / "run") < int(EPISODES[kind])
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = rl_exec("run", "--resume", "run", cwd=tmp_path)
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    whole = uninterrupted(kind, tmp_path, monkeypatch)
    assert results(tmp_path / "run") == results(whole)
    weights = [
        torch.load(f / "model.pt", weights_only=True)["weights"] for f in (tmp_path / "run", whole)
    ]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])
    assert scalars(tmp_path / "run") == scalars(whole)  # same steps, once each
    assert not (tmp_path / "run" / RESUME_FILE).exists()  # complete: nothing left to resume
