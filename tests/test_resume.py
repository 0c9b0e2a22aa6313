"""Resumable training: a run killed at any point and resumed ends exactly as the uninterrupted run
(weights, metrics.json, TensorBoard curves); Ctrl-C saves and says how to resume; --resume takes
every setting from the checkpoint."""

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

from rl_order_execution.agents.dqn import train
from rl_order_execution.agents.training import TrainHooks
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams
from rl_order_execution.runs.resume import RESUME_FILE
from scripts.same_numbers import stable

# a small market and agent: a few hundred episodes train in about a second
TINY_ENV = {
    "RL_SIMULATION__TIME_HORIZON": "10",
    "RL_RL__DQN__N_ENVS": "8",
    "RL_RL__DQN__LEARNING_STARTS": "100",
    "RL_RL__DQN__MEMORY_SIZE": "3000",
    "RL_RL__DQN__BATCH_SIZE": "32",
    "RL_RL__DQN__HIDDEN_SIZES": "[32, 32]",
    "RL_RL__VALIDATION_EPISODES": "50",
    "RL_RL__EVAL_INTERVAL": "40",
    "RL_RL__CHECKPOINT_INTERVAL": "40",
    "RL_RL__DQN__EPSILON_DECAY": "0.99",
    "RL_LOGGING__PROGRESS": "false",
}


def tiny() -> Settings:
    return Settings.model_validate(
        {
            "simulation": {"time_horizon": 10},
            "rl": {
                "episodes": 400,
                "validation_episodes": 50,
                "eval_interval": 40,
                "dqn": {
                    "n_envs": 8,
                    "learning_starts": 100,
                    "memory_size": 3000,
                    "batch_size": 32,
                    "hidden_sizes": [32, 32],
                    "n_step": 3,
                    "epsilon_decay": 0.99,
                },
            },
            "logging": {"progress": False, "tensorboard": False},
        }
    )


class Recorder:
    """Checkpoints that keep every state saved (through torch.save, as the file would), and can
    start from one of them."""

    def __init__(self, start: bytes | None = None) -> None:
        self.start = start
        self.saved: list[tuple[int, bytes]] = []

    def restore(self) -> dict[str, Any] | None:
        if self.start is None:
            return None
        state: dict[str, Any] = torch.load(io.BytesIO(self.start), weights_only=True)
        return state

    def reached(self, episodes: int, finished: bool, state: Callable[[], dict[str, Any]]) -> None:
        if episodes // 100 > (self.saved[-1][0] if self.saved else 0) // 100 or finished:
            buffer = io.BytesIO()
            torch.save(state(), buffer)
            self.saved.append((episodes, buffer.getvalue()))


def test_training_resumed_from_any_checkpoint_ends_exactly_as_uninterrupted() -> None:
    settings = tiny()
    whole = train(settings, MarketParams.of(settings))
    recorder = Recorder()
    recorded = train(settings, MarketParams.of(settings), TrainHooks(checkpoints=recorder))
    assert recorded.best_validation_bps == whole.best_validation_bps  # saving changes nothing
    episodes = [e for e, _ in recorder.saved]  # one save per 100 episodes crossed, and the end
    assert len(episodes) == 4 and episodes[0] >= 100 and episodes[-1] >= 400
    assert recorded.updates > 0
    for _, state in recorder.saved:
        resumed = train(
            settings, MarketParams.of(settings), TrainHooks(checkpoints=Recorder(state))
        )
        assert resumed.episodes == whole.episodes and resumed.updates == whole.updates
        assert resumed.history == whole.history
        assert resumed.best_validation_bps == whole.best_validation_bps
        mine, theirs = resumed.agent.policy_state(), whole.agent.policy_state()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar in a run folder, in the order TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def without_seconds(tree: Any) -> Any:
    """metrics.json without what names the moment or the command (times, provenance's start,
    finish, command and commit): what a resumed run must reproduce is everything else."""
    return stable(tree)


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
    deadline = time.monotonic() + 40
    while saved_episodes(folder) < episodes:
        assert process.poll() is None, "training ended before it could be interrupted"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.02)


ARGS = ("--no-best-params", "--episodes", "1600", "--eval-episodes", "200")


def test_run_killed_mid_training_resumes_to_the_same_metrics_and_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed = rl_exec("run", *ARGS, "--output-dir", "killed", cwd=tmp_path)
    wait_for_checkpoint(killed, tmp_path / "killed", 400)
    killed.send_signal(signal.SIGKILL)  # at some point of the training loop after that save
    killed.communicate()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    resumed = rl_exec("run", "--resume", "killed", cwd=tmp_path)
    output = resumed.communicate(timeout=50)[0]
    assert resumed.returncode == 0, output

    monkeypatch.chdir(tmp_path)
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    whole = CliRunner().invoke(app, ["run", *ARGS, "--output-dir", "whole"])
    assert whole.exit_code == 0, whole.output

    def metrics(name: str) -> Any:
        return without_seconds(json.loads((tmp_path / name / "metrics.json").read_text()))

    assert metrics("killed") == metrics("whole")
    weights = [
        torch.load(tmp_path / n / "model.pt", weights_only=True)["weights"]
        for n in ("killed", "whole")
    ]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])
    assert scalars(tmp_path / "killed") == scalars(tmp_path / "whole")  # same steps, once each
    assert not (tmp_path / "killed" / RESUME_FILE).exists()  # complete: nothing left to resume


def test_ctrl_c_saves_a_checkpoint_says_how_to_resume_and_exits_130(tmp_path: Path) -> None:
    process = rl_exec("train", *ARGS[:3], "--output-dir", "run", cwd=tmp_path)
    wait_for_checkpoint(process, tmp_path / "run", 200)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 130, output
    lines = [line for line in output.splitlines() if "Ctrl-C" in line]
    assert len(lines) == 1 and lines[0].endswith("resume with: rl-exec train --resume run")
    assert "Traceback" not in output
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert RESUME_FILE in files and not [f for f in files if f.endswith(".tmp")]
    saved = saved_episodes(tmp_path / "run")
    assert 200 <= saved < 1600
    resumed = rl_exec("train", "--resume", "run", cwd=tmp_path)
    output = resumed.communicate(timeout=50)[0]
    assert resumed.returncode == 0, output
    assert (tmp_path / "run" / "model.pt").is_file()


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("train", ["--seed", "7"], "--seed 7 contradicts the run being resumed (simulation.seed"),
        ("train", ["--episodes", "100"], "only a larger --episodes may be given"),
        ("train", ["--config", "x.yaml"], "--config cannot be combined with --resume"),
        ("train", ["--device", "auto"], "--device auto contradicts"),
        ("run", [], "the run was started by `rl-exec train`"),
    ],
)
def test_resume_flags_that_contradict_the_checkpoint_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, flags: list[str], message: str
) -> None:
    from rl_order_execution.runs.resume import ResumeFile, RunManifest

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    ResumeFile(tmp_path / "run", RunManifest("train", tiny()), 42, 40).start()
    result = CliRunner().invoke(app, [command, "--resume", "run", *flags])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_resume_of_a_folder_without_a_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "nothing to resume" in result.output
