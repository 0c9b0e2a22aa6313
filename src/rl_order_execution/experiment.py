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
from scipy.stats import trim_mean

from rl_order_execution.agents import QNetwork, resolve_device
from rl_order_execution.analytics import (
    BestDiscreteStrategy,
    OptimalStrategy,
    ScheduleStrategy,
    optimal_cost,
    reference_schedule,
)
from rl_order_execution.benchmarking import (
    TOLERANCE_SE,
    exact_values,
    frontier,
    optimum_gap,
    run_checks,
)
from rl_order_execution.evaluation import Evaluation, evaluate
from rl_order_execution.market import MarketParams, shock_matrix
from rl_order_execution.reporting import (
    atomic_write,
    benchmark_table,
    markdown_report,
    metrics_table,
    plot_execution,
    plot_frontier,
    plot_savings,
    print_outputs,
    savings_table,
    write_json,
    write_text_atomic,
)
from rl_order_execution.settings import Settings, SettingsError, flatten
from rl_order_execution.strategies import TWAP, GreedyAgent, Strategy
from rl_order_execution.training import (
    ScalarLogger,
    TrainResult,
    build_network,
    checkpoint_payload,
    train,
)


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
        network = build_network(p, settings.rl)
        network.load_state_dict(payload["weights"])
    except Exception as exc:  # any failure here means: not a checkpoint we can use
        raise CheckpointError(
            f"checkpoint {path}: not a readable rl-exec checkpoint ({type(exc).__name__})"
        ) from exc
    return LoadedAgent(network.to(resolve_device(device)), settings, payload)


def evaluate_strategies(settings: Settings, strategies: list[Strategy]) -> Evaluation:
    """All strategies on the test shocks (evaluation.seed), in one batched pass each."""
    p = MarketParams.from_settings(settings.simulation)
    ev = settings.evaluation
    shocks = shock_matrix(ev.seed, ev.episodes, p.N, ev.antithetic)
    return evaluate(p, strategies, shocks, ev.antithetic)


def run_references(p: MarketParams) -> list[Strategy]:
    """TWAP and the exact benchmarks that a run reports next to the agent."""
    refs: list[Strategy] = [
        TWAP(),
        ScheduleStrategy("almgren-chriss", reference_schedule(p, "almgren-chriss")),
    ]
    refs.append(OptimalStrategy())
    if p.price_model == "gbm" and p.mu == 0:
        refs.append(BestDiscreteStrategy(p))
    return refs


def _sanity_warnings(evaluation: Evaluation, console: Console) -> list[str]:
    warnings = [
        f"{name} beats the exact optimum by more than 3 standard errors: a look-ahead leak or a bug"
        for name in evaluation.beats_optimum()
    ]
    optimal = next((s for s in evaluation.strategies if isinstance(s, OptimalStrategy)), None)
    if optimal is not None and optimal.clip_share > 0:
        warnings.append(
            f"the sell-only constraint bound the exact optimum in {optimal.clip_share:.3%} of "
            "decisions (clipped to [0, q]); its cost is then slightly above E[C_opt]"
        )
    if evaluation.params.lot_size > 0:
        warnings.append(
            "lot_size > 0: gap captured and the look-ahead check use the continuous optimum, "
            "which no lot-rounded strategy reaches (the shares are conservative)"
        )
    for text in warnings:
        console.print(f"[yellow]warning:[/yellow] {text}", highlight=False)
    return warnings


def report(
    settings: Settings,
    evaluation: Evaluation,
    run_dir: Path,
    console: Console,
    extra: dict[str, Any],
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Print the tables; write metrics.json, report.md and the plots.

    Returns the paths written and the content of metrics.json.
    """
    p = evaluation.params
    metrics = evaluation.metrics(exact_gap=optimum_gap(p))
    for name, m in metrics.items():
        m.update(exact_values(p, name))
    console.print(metrics_table(metrics, evaluation.episodes))
    console.print(savings_table(metrics))
    warnings = _sanity_warnings(evaluation, console)
    outputs = {
        "metrics": run_dir / "metrics.json",
        "report": run_dir / "report.md",
        "execution plot": run_dir / "execution_analysis.png",
        "savings plot": run_dir / "is_distribution.png",
        "frontier plot": run_dir / "frontier.png",
    }
    data = {
        "episodes": evaluation.episodes,
        "evaluation_seed": settings.evaluation.seed,
        "settings": settings.model_dump(mode="json"),
        "exact": {"cost_twap": metrics["twap"]["cost_mean_exact"], "cost_optimal": optimal_cost(p)},
        "strategies": metrics,
        "warnings": warnings,
        **extra,
    }
    agents = [n for n in evaluation.outcomes if n.startswith("agent")]
    if len(agents) > 1:
        data["seeds_summary"] = _seeds_summary(metrics, agents, settings.simulation.seed)
    write_json(outputs["metrics"], data)
    focus = agents[0] if agents else list(evaluation.outcomes)[-1]
    shown = [n for n in ("twap", "optimal") if n in evaluation.outcomes] + agents[:1]
    plot_execution(evaluation, outputs["execution plot"], shown)
    plot_savings(evaluation, outputs["savings plot"], focus)
    plot_frontier(evaluation, frontier(p), outputs["frontier plot"], ["twap", "optimal", *agents])
    plots = {"inventory": "execution_analysis.png", "savings": "is_distribution.png"}
    plots["frontier"] = "frontier.png"
    write_text_atomic(outputs["report"], markdown_report(data, plots))
    return outputs, data


def seed_list(master: int, count: int) -> list[int]:
    """Independent training seeds split from the master seed."""
    if count == 1:
        return [master]
    return [
        int(s.generate_state(1)[0] % 2**31) for s in np.random.SeedSequence(master).spawn(count)
    ]


def across_seeds(values: list[float], seed: int) -> dict[str, Any]:
    """Mean, interquartile mean and a bootstrap 95 % interval of the mean across seeds."""
    x = np.asarray(values)
    rng = np.random.default_rng(seed)
    boot = rng.choice(x, size=(10_000, len(x)), replace=True).mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "values": values,
        "mean": float(x.mean()),
        "iqm": float(trim_mean(x, 0.25)),
        "ci95_low": float(lo),
        "ci95_high": float(hi),
    }


def run_experiment(
    settings: Settings, run_dir: Path, console: Console, seeds: int = 1
) -> dict[str, Any]:
    """`rl-exec run`: train (once per seed), evaluate against TWAP and the exact benchmarks."""
    run_dir.mkdir(parents=True, exist_ok=True)
    p = MarketParams.from_settings(settings.simulation)
    agents: list[Strategy] = []
    training: dict[str, Any] = {}
    for seed in seed_list(settings.simulation.seed, seeds):
        seeded = settings.model_copy(
            update={"simulation": settings.simulation.model_copy(update={"seed": seed})}
        )
        name, folder = (
            ("agent", run_dir) if seeds == 1 else (f"agent-{seed}", run_dir / f"seed-{seed}")
        )
        folder.mkdir(parents=True, exist_ok=True)
        console.print(f"[bold]training[/bold] {name} (seed {seed})", highlight=False)
        result = train_with_progress(seeded, folder, console)
        save_checkpoint(folder / "model.pt", result, seeded)
        agents.append(GreedyAgent(result.agent.policy, name=name))
        training[name] = checkpoint_payload(result, seeded)["training"] | {"seed": seed}
    evaluation = evaluate_strategies(settings, [*run_references(p), *agents])
    outputs, data = report(settings, evaluation, run_dir, console, {"training": training})
    outputs = {"run folder": run_dir, **outputs}
    if seeds == 1:
        outputs["checkpoint"] = run_dir / "model.pt"
    if settings.logging.tensorboard:
        outputs["tensorboard"] = run_dir
    print_outputs(console, outputs)
    return data


def _seeds_summary(
    metrics: dict[str, dict[str, Any]], names: list[str], seed: int
) -> dict[str, Any]:
    """The agents' cost savings and gap captured summarised across their training seeds."""
    savings = [metrics[n]["savings_cost"]["avg_savings_bps"] for n in names]
    summary = {"cost_savings_bps": across_seeds(savings, seed)}
    gaps = [g["value"] for n in names if (g := metrics[n].get("gap_captured"))]
    if len(gaps) == len(names):
        summary["gap_captured"] = across_seeds(gaps, seed)
    return summary


def run_benchmark(settings: Settings, out_dir: Path, console: Console) -> bool:
    """`rl-exec benchmark`: closed forms vs Monte Carlo; True when they all agree."""
    p = MarketParams.from_settings(settings.simulation)
    shocks = shock_matrix(settings.evaluation.seed, settings.evaluation.episodes, p.N)
    checks, evaluation = run_checks(p, shocks)
    curve = frontier(p)
    console.print(benchmark_table(checks, evaluation.episodes))
    data = {
        "episodes": evaluation.episodes,
        "evaluation_seed": settings.evaluation.seed,
        "settings": settings.model_dump(mode="json"),
        "tolerance_se": TOLERANCE_SE,
        "strategies": {c.name: c.values | {"ok": c.ok} for c in checks},
        "frontier": [{"risk_aversion": lam, "is_mean": m, "is_std": sd} for lam, m, sd in curve],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "benchmark.json", data)
    plot_frontier(evaluation, curve, out_dir / "frontier.png", [c.name for c in checks])
    print_outputs(
        console, {"benchmark": out_dir / "benchmark.json", "frontier": out_dir / "frontier.png"}
    )
    bad = [c.name for c in checks if not c.ok]
    if bad:
        console.print(
            f"[red]self-check FAILED[/red]: Monte Carlo and closed form disagree by more than "
            f"{TOLERANCE_SE:g} standard errors for {', '.join(bad)}",
            highlight=False,
        )
    else:
        console.print(
            f"[green]self-check passed[/green]: all within {TOLERANCE_SE:g} standard errors"
        )
    return not bad


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
    p = MarketParams.from_settings(settings.simulation)
    strategies = [*run_references(p), GreedyAgent(loaded.network)]
    evaluation = evaluate_strategies(settings, strategies)
    outputs, data = report(settings, evaluation, run_dir, console, {"checkpoint": str(checkpoint)})
    print_outputs(console, outputs)
    return data
