"""A run end to end: train with progress and TensorBoard, checkpoint, evaluate, report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
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

from rl_order_execution.agents.checkpoint import LoadedAgent, save_checkpoint, training_record
from rl_order_execution.agents.checkpoint import load_checkpoint as load_checkpoint
from rl_order_execution.agents.registry import agent_spec, settings_kind
from rl_order_execution.agents.training import ScalarLogger, TrainResult
from rl_order_execution.config import Settings, flatten
from rl_order_execution.evaluation import (
    TOLERANCE_SE,
    Evaluation,
    SeedsSummary,
    StrategyMetrics,
    across_seeds,
    evaluate,
    exact_values,
    frontier,
    optimum_gap,
    run_checks,
)
from rl_order_execution.exact import optimal_cost, solve_lq
from rl_order_execution.market import MarketParams, shock_matrix
from rl_order_execution.reporting import (
    BenchmarkReport,
    ExactCosts,
    RunReport,
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
from rl_order_execution.strategies import (
    GreedyAgent,
    OptimalStrategy,
    Strategy,
    reference_strategies,
)


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

        train = agent_spec(settings_kind(settings)).train
        return train(settings, logger=logger, progress=progress)


def evaluate_strategies(settings: Settings, strategies: list[Strategy]) -> Evaluation:
    """All strategies on the test shocks (evaluation.seed), in one batched pass each."""
    p = MarketParams.from_settings(settings.simulation)
    ev = settings.evaluation
    shocks = shock_matrix(p, ev.seed, ev.episodes, ev.antithetic)
    return evaluate(p, strategies, shocks, ev.antithetic)


def run_references(p: MarketParams) -> list[Strategy]:
    """TWAP and the exact benchmarks that a run reports next to the agent."""
    return reference_strategies(p, runs_only=True)


def _sanity_warnings(evaluation: Evaluation, console: Console, exact: bool) -> list[str]:
    warnings = [
        f"{name} beats the exact optimum by more than 3 standard errors: a look-ahead leak or a bug"
        for name in (evaluation.beats_optimum() if exact else [])
    ]
    if not exact:
        warnings.append(
            f"price_model {evaluation.params.price_model} with drift has no exact optimum on "
            "(q, S): 'optimal' is an approximation (the GBM recursion's policy), so no gap "
            "captured and no look-ahead check are reported"
        )
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
) -> tuple[dict[str, Path], RunReport]:
    """Print the tables; write metrics.json, report.md and the plots.

    `extra` holds `training` (rl-exec run) or `checkpoint` (rl-exec evaluate). Returns the paths
    written and the report written as metrics.json.
    """
    p = evaluation.params
    exact = solve_lq(p).exact
    metrics = {
        name: replace(m, exact=exact_values(p, name))
        for name, m in evaluation.metrics(exact_gap=optimum_gap(p) if exact else None).items()
    }
    console.print(metrics_table(metrics, evaluation.episodes))
    console.print(savings_table(metrics))
    warnings = _sanity_warnings(evaluation, console, exact)
    outputs = {
        "metrics": run_dir / "metrics.json",
        "report": run_dir / "report.md",
        "execution plot": run_dir / "execution_analysis.png",
        "savings plot": run_dir / "is_distribution.png",
        "frontier plot": run_dir / "frontier.png",
    }
    twap_exact = metrics["twap"].exact
    agents = [n for n in evaluation.outcomes if n.startswith("agent")]
    data = RunReport(
        episodes=evaluation.episodes,
        evaluation_seed=settings.evaluation.seed,
        settings=settings,
        exact=ExactCosts(
            cost_twap=None if twap_exact is None else twap_exact.cost_mean_exact,
            cost_optimal=optimal_cost(p) if exact else None,
        ),
        strategies=metrics,
        warnings=warnings,
        training=extra.get("training"),
        checkpoint=extra.get("checkpoint"),
        seeds_summary=(
            _seeds_summary(metrics, agents, settings.simulation.seed) if len(agents) > 1 else None
        ),
    )
    write_json(outputs["metrics"], data.to_json())
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


def run_experiment(
    settings: Settings, run_dir: Path, console: Console, seeds: int = 1
) -> RunReport:
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
        agents.append(GreedyAgent(result.agent, name=name))
        training[name] = training_record(result) | {"seed": seed}
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
    metrics: dict[str, StrategyMetrics], names: list[str], seed: int
) -> SeedsSummary:
    """The agents' cost savings and gap captured summarised across their training seeds."""
    savings = [metrics[n].savings_cost.avg_savings_bps for n in names]
    gaps = [g.value for n in names if (g := metrics[n].gap_captured) is not None]
    return SeedsSummary(
        cost_savings_bps=across_seeds(savings, seed),
        gap_captured=across_seeds(gaps, seed) if len(gaps) == len(names) else None,
    )


def run_benchmark(settings: Settings, out_dir: Path, console: Console) -> bool:
    """`rl-exec benchmark`: closed forms vs Monte Carlo; True when they all agree."""
    p = MarketParams.from_settings(settings.simulation)
    shocks = shock_matrix(p, settings.evaluation.seed, settings.evaluation.episodes)
    checks, evaluation = run_checks(p, shocks)
    curve = frontier(p)
    console.print(benchmark_table(checks, evaluation.episodes))
    data = BenchmarkReport(
        episodes=evaluation.episodes,
        evaluation_seed=settings.evaluation.seed,
        settings=settings,
        tolerance_se=TOLERANCE_SE,
        checks=checks,
        frontier=curve,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "benchmark.json", data.to_json())
    plot_frontier(evaluation, curve, out_dir / "frontier.png", [c.name for c in checks])
    print_outputs(
        console, {"benchmark": out_dir / "benchmark.json", "frontier": out_dir / "frontier.png"}
    )
    bad = data.failed
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
) -> RunReport:
    """`rl-exec evaluate`: the saved agent vs TWAP on settings.simulation (the trained market)."""
    console.print(f"evaluating {checkpoint} on {settings.evaluation.episodes:,} test episodes")
    p = MarketParams.from_settings(settings.simulation)
    strategies = [*run_references(p), GreedyAgent(loaded.agent)]
    evaluation = evaluate_strategies(settings, strategies)
    outputs, data = report(settings, evaluation, run_dir, console, {"checkpoint": str(checkpoint)})
    print_outputs(console, outputs)
    return data
