"""A run's training as the user sees it: the Rich progress bar, the TensorBoard writer, Ctrl-C
turned into a checkpoint, the one-line summary and the warnings that make an agent's results not
those of a trained agent."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rl_order_execution.agents.checkpoint import training_record
from rl_order_execution.agents.registry import agent_spec, settings_kind
from rl_order_execution.agents.training import (
    ScalarLogger,
    TrainHooks,
    TrainingInterrupted,
    TrainResult,
)
from rl_order_execution.config import Settings, flatten
from rl_order_execution.market import MarketParams
from rl_order_execution.runs.folders import RunInterrupted
from rl_order_execution.runs.resume import (
    ResumeFile,
    RunManifest,
    StopRequest,
    rewind_tensorboard,
    stop_on_interrupt,
)


@contextmanager
def _tensorboard(
    settings: Settings, run_dir: Path, resume: ResumeFile | None = None
) -> Iterator[ScalarLogger | None]:
    """The run's SummaryWriter; a resumed run first cuts the event files back to its checkpoint,
    so every step is written once and the curves continue where they stopped."""
    if resume is not None:
        rewind_tensorboard(run_dir, resume.tensorboard_sizes())
    if not settings.logging.tensorboard:
        yield None
        return
    from torch.utils.tensorboard import SummaryWriter

    continuing = any(run_dir.glob("events.out.tfevents.*"))
    writer = SummaryWriter(log_dir=str(run_dir))
    if not continuing:
        rows = "\n".join(f"|{k}|{v}|" for k, v in flatten(settings).items())
        writer.add_text("hyperparameters", f"|setting|value|\n|-|-|\n{rows}")
    if resume is not None:
        resume.before_save = writer.flush
    try:
        yield writer
    finally:
        writer.close()


def _eps(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def train_with_progress(
    settings: Settings,
    market: MarketParams,
    run_dir: Path,
    console: Console,
    resume: ResumeFile | None = None,
) -> TrainResult:
    """Train, showing a Rich progress bar and logging to TensorBoard in run_dir; with `resume`,
    continue from its checkpoint, save one every rl.checkpoint_interval episodes, and turn Ctrl-C
    into a checkpoint and TrainingInterrupted."""
    total = settings.rl.episodes
    columns = (
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes  return {task.fields[ret]:>8} bps  eps {task.fields[eps]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    disable = not settings.logging.progress
    with (
        _tensorboard(settings, run_dir, resume) as logger,
        Progress(*columns, console=console, disable=disable, transient=False) as bar,
        stop_on_interrupt(resume.stop if resume is not None else StopRequest()),
    ):
        task = bar.add_task("train", total=total, ret="n/a", eps="-")
        last = [0.0]

        def progress(done: int, stats: dict[str, float]) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.1 or done >= total:  # redraw at most 10x a second
                last[0] = now
                ret = stats["return_bps"]
                shown = "n/a" if np.isnan(ret) else f"{ret:.1f}"
                eps = _eps(stats["epsilon"])  # PPO and SAC explore without one: "-"
                bar.update(task, completed=min(done, total), ret=shown, eps=eps)

        spec = agent_spec(settings_kind(settings))
        hooks = TrainHooks(logger=logger, progress=progress)
        if resume is None or not spec.resumable:  # an agent kind without checkpoints
            return spec.train(settings, market, hooks)
        resume.start()
        return spec.train(settings, market, replace(hooks, checkpoints=resume))


def resumable(manifest: RunManifest, folder: Path, seed: int, settings: Settings) -> ResumeFile:
    return ResumeFile(folder, manifest, seed, settings.rl.checkpoint_interval)


def interrupted(manifest: RunManifest, run_dir: Path, exc: TrainingInterrupted) -> RunInterrupted:
    """Ctrl-C during training: the checkpoint is saved; say exactly how to continue."""
    return RunInterrupted(
        f"stopped by Ctrl-C after {exc.episodes:,} training episodes; checkpoint saved, resume "
        f"with: rl-exec {manifest.command} --resume {run_dir}"
    )


FEW_UPDATES = 100  # fewer gradient updates than this and the agent is barely its initial network


def initial_validation_bps(settings: Settings, market: MarketParams) -> float | None:
    """Validation savings of the untrained network a training with these settings starts from
    (same seed, same validation set): a run of one episode that makes no gradient update.
    None when this kind of agent updates even then (its untrained score is not known)."""
    dqn = settings.rl.dqn.model_copy(update={"learning_starts": 2**62})
    rl = settings.rl.model_copy(update={"episodes": 1, "dqn": dqn})
    probe = agent_spec(settings_kind(settings)).train(
        settings.model_copy(update={"rl": rl}), market
    )
    return probe.best_validation_bps if probe.updates == 0 else None


def training_summary(result: TrainResult, asked: int, initial_bps: float | None) -> str:
    """One line: episodes (asked and trained), updates, time, best validation savings."""
    untrained = "" if initial_bps is None else f" (untrained network: {initial_bps:.2f} bps)"
    return (
        f"trained {result.episodes:,} episodes ({asked:,} asked), {result.updates:,} gradient "
        f"updates in {result.seconds:.1f} s; best validation cost savings vs TWAP "
        f"{result.best_validation_bps:.2f} bps{untrained}"
    )


def training_warnings(
    name: str, result: TrainResult, settings: Settings, initial_bps: float | None
) -> list[str]:
    """What makes an agent's results not those of a trained agent."""
    warnings = []
    if result.updates == 0:
        warnings.append(
            f"{name} made no gradient update in {result.episodes:,} training episodes (learning "
            f"starts after rl.dqn.learning_starts = {settings.rl.dqn.learning_starts:,} "
            "transitions): "
            "its results are those of its random initial network, not of a trained agent"
        )
    elif result.updates < FEW_UPDATES:
        warnings.append(
            f"{name} made only {result.updates:,} gradient updates in {result.episodes:,} "
            "training episodes: it is barely trained (train longer with --episodes)"
        )
    best = result.best_validation_bps
    if result.updates > 0 and initial_bps is not None and best <= initial_bps:
        warnings.append(
            f"{name}'s validation savings never improved on its untrained network "
            f"({best:.2f} vs {initial_bps:.2f} bps): training did not help"
        )
    elif initial_bps is None and len(result.history) > 1 and best <= result.history[0].savings_bps:
        first = result.history[0]
        warnings.append(
            f"{name}'s validation savings never improved after its first check "
            f"({first.savings_bps:.2f} bps after {first.episodes:,} episodes)"
        )
    return warnings


def training_outcome(
    name: str, settings: Settings, market: MarketParams, result: TrainResult, console: Console
) -> tuple[dict[str, Any], list[str]]:
    """Print the training summary; return metrics.json's training record and the warnings."""
    initial = initial_validation_bps(settings, market)
    console.print(training_summary(result, settings.rl.episodes, initial), highlight=False)
    record = training_record(result) | {
        "seed": settings.simulation.seed,
        "episodes_asked": settings.rl.episodes,
        "initial_validation_bps": initial,
    }
    return record, training_warnings(name, result, settings, initial)


def print_warnings(console: Console, warnings: Sequence[str], loud: bool = False) -> None:
    style = "bold red" if loud else "yellow"
    for text in warnings:
        console.print(f"[{style}]warning:[/{style}] {text}", highlight=False, soft_wrap=True)
