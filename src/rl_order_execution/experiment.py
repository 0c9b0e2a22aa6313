"""A run end to end: train with progress and TensorBoard, checkpoint, evaluate, report."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rl_order_execution.agents import QNetwork, resolve_device
from rl_order_execution.evaluation import Evaluation, evaluate
from rl_order_execution.market import OBS_DIM, MarketParams, shock_matrix
from rl_order_execution.reporting import (
    atomic_write,
    metrics_table,
    plot_execution,
    plot_savings,
    print_outputs,
    savings_table,
    write_json,
)
from rl_order_execution.settings import Settings, SettingsError, flatten
from rl_order_execution.strategies import TWAP, GreedyAgent, Strategy
from rl_order_execution.training import ScalarLogger, TrainResult, checkpoint_payload, train


class CheckpointError(SettingsError):
    """A checkpoint that is missing or not ours."""


def default_run_dir(settings: Settings, run_name: str | None) -> Path:
    name = run_name or datetime.now().strftime("%Y%m%d-%H%M%S") + f"-seed{settings.simulation.seed}"
    return settings.logging.output_root / name


@contextmanager
def _tensorboard(settings: Settings, run_dir: Path) -> Iterator[ScalarLogger | None]:
    if not settings.logging.tensorboard:
        yield None
        return
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir))
    rows = "\n".join(f"|{k}|{v}|" for k, v in flatten(settings).items())
    writer.add_text("hyperparameters", f"|setting|value|\n|-|-|\n{rows}")
    try:
        yield writer
    finally:
        writer.close()


def train_with_progress(settings: Settings, run_dir: Path, console: Console) -> TrainResult:
    """Train, showing a Rich progress bar and logging to TensorBoard in run_dir."""
    total = settings.rl.episodes
    columns = (
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes  return {task.fields[ret]:>8} bps  eps {task.fields[eps]:.3f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    disable = not settings.logging.progress
    with (
        _tensorboard(settings, run_dir) as logger,
        Progress(*columns, console=console, disable=disable, transient=False) as bar,
    ):
        task = bar.add_task("train", total=total, ret="n/a", eps=settings.rl.epsilon_start)
        last = [0.0]

        def progress(done: int, stats: dict[str, float]) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.1 or done >= total:  # redraw at most 10x a second
                last[0] = now
                ret = stats["return_bps"]
                shown = "n/a" if np.isnan(ret) else f"{ret:.1f}"
                bar.update(task, completed=min(done, total), ret=shown, eps=stats["epsilon"])

        return train(settings, logger=logger, progress=progress)


def save_checkpoint(path: Path, result: TrainResult, settings: Settings) -> None:
    buffer = io.BytesIO()
    torch.save(checkpoint_payload(result, settings), buffer)
    atomic_write(path, lambda h: h.write(buffer.getvalue()))


@dataclass
class LoadedAgent:
    network: QNetwork
    settings: Settings
    payload: dict[str, Any]


def load_checkpoint(path: Path, device: str = "cpu") -> LoadedAgent:
    """Rebuild the greedy agent and the settings it was trained with."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        settings = Settings.model_validate(payload["settings"])
        p = MarketParams.from_settings(settings.simulation)
        network = QNetwork(OBS_DIM, p.n_actions, settings.rl.hidden_sizes)
        network.load_state_dict(payload["weights"])
    except Exception as exc:  # any failure here means: not a checkpoint we can use
        raise CheckpointError(
            f"checkpoint {path}: not a readable rl-exec checkpoint ({type(exc).__name__})"
        ) from exc
    return LoadedAgent(network.to(resolve_device(device)), settings, payload)


def evaluate_strategies(settings: Settings, strategies: list[Strategy]) -> Evaluation:
    """All strategies on the test shocks (evaluation.seed), in one batched pass each."""
    p = MarketParams.from_settings(settings.simulation)
    shocks = shock_matrix(settings.evaluation.seed, settings.evaluation.episodes, p.N)
    return evaluate(p, strategies, shocks)


def report(
    settings: Settings,
    evaluation: Evaluation,
    run_dir: Path,
    console: Console,
    extra: dict[str, Any],
) -> dict[str, Path]:
    """Print the table; write metrics.json and the plots. Returns what was written."""
    metrics = evaluation.metrics()
    console.print(metrics_table(metrics, evaluation.episodes))
    console.print(savings_table(metrics))
    outputs = {
        "metrics": run_dir / "metrics.json",
        "execution plot": run_dir / "execution_analysis.png",
        "savings plot": run_dir / "is_distribution.png",
    }
    data = {
        "episodes": evaluation.episodes,
        "evaluation_seed": settings.evaluation.seed,
        "settings": settings.model_dump(mode="json"),
        "strategies": metrics,
        **extra,
    }
    write_json(outputs["metrics"], data)
    plot_execution(evaluation, outputs["execution plot"])
    focus = "agent" if "agent" in evaluation.trajectories else list(evaluation.trajectories)[-1]
    plot_savings(evaluation, outputs["savings plot"], focus)
    return outputs


def run_experiment(settings: Settings, run_dir: Path, console: Console) -> dict[str, Any]:
    """`rl-exec run`: train, checkpoint, evaluate against TWAP, report."""
    run_dir.mkdir(parents=True, exist_ok=True)
    result = train_with_progress(settings, run_dir, console)
    save_checkpoint(run_dir / "model.pt", result, settings)
    evaluation = evaluate_strategies(settings, [TWAP(), GreedyAgent(result.agent.online)])
    training = checkpoint_payload(result, settings)["training"]
    outputs = report(settings, evaluation, run_dir, console, {"training": training})
    outputs = {"run folder": run_dir, "checkpoint": run_dir / "model.pt", **outputs}
    if settings.logging.tensorboard:
        outputs["tensorboard"] = run_dir
    print_outputs(console, outputs)
    return evaluation.metrics()


def train_only(settings: Settings, run_dir: Path, console: Console) -> Path:
    """`rl-exec train`: train and save the checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    result = train_with_progress(settings, run_dir, console)
    path = run_dir / "model.pt"
    save_checkpoint(path, result, settings)
    console.print(
        f"trained {result.episodes:,} episodes, {result.updates:,} updates "
        f"in {result.seconds:.1f} s; "
        f"best validation cost savings vs TWAP {result.best_validation_bps:.2f} bps"
    )
    print_outputs(console, {"checkpoint": path, "tensorboard": run_dir})
    return path


def evaluate_checkpoint(
    loaded: LoadedAgent, checkpoint: Path, settings: Settings, run_dir: Path, console: Console
) -> dict[str, Any]:
    """`rl-exec evaluate`: the saved agent vs TWAP on settings.simulation (the trained market)."""
    console.print(f"evaluating {checkpoint} on {settings.evaluation.episodes:,} test episodes")
    evaluation = evaluate_strategies(settings, [TWAP(), GreedyAgent(loaded.network)])
    outputs = report(settings, evaluation, run_dir, console, {"checkpoint": str(checkpoint)})
    print_outputs(console, outputs)
    return evaluation.metrics()
