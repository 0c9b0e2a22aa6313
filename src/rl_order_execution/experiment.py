"""A run end to end: train with progress and TensorBoard, checkpoint, evaluate, report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from rl_order_execution.agents.checkpoint import LoadedAgent, save_checkpoint
from rl_order_execution.agents.checkpoint import load_checkpoint as load_checkpoint
from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.agents.registry import AGENTS, agent_spec, settings_kind
from rl_order_execution.agents.training import TrainingInterrupted
from rl_order_execution.config import Settings, SettingsError
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
from rl_order_execution.evaluation.replay import replay_summary, verdicts, with_hindsight
from rl_order_execution.exact import solve_lq
from rl_order_execution.market import MarketParams, shock_matrix
from rl_order_execution.market.positivity import describe
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
    seeds_table,
    sessions_table,
    splits_table,
    write_json,
    write_text_atomic,
)
from rl_order_execution.reporting.book import BookReport
from rl_order_execution.reporting.provenance import Provenance, now_utc
from rl_order_execution.runs.episodes import EPISODES_FILE, save_episode_costs
from rl_order_execution.runs.resume import RunManifest
from rl_order_execution.runs.training import (
    FEW_UPDATES,
    interrupted,
    print_warnings,
    resumable,
    train_with_progress,
    training_outcome,
)
from rl_order_execution.strategies import (
    CALIBRATED,
    Strategy,
    reference_strategies,
    replay_references,
)


def market_warnings(settings: Settings, p: MarketParams) -> list[str]:
    """The positivity rule's warning (docs/MODEL.md, "Which markets are refused"): the largest trade
    the agent's action space allows would execute at a price <= 0 in some step."""
    spec = agent_spec(settings_kind(settings))
    speed = spec.largest_speed(p)
    risky = p.largest_trade_risk(speed)
    if risky is None:
        return []
    space = "max_multiplier" if spec.continuous else "the largest action_multipliers entry"
    return [
        f"{describe(risky)}: the {spec.kind} agent may trade {speed:g}x the TWAP rate ({space}), "
        "at most the whole order, and all of it at the last step"
    ]


def evaluate_strategies(
    settings: Settings, p: MarketParams, strategies: list[Strategy]
) -> Evaluation:
    """All strategies on market p's test shocks (evaluation.seed), in one batched pass each; on
    replayed bars, on every test window."""
    if p.replay is not None:
        return evaluate(p, strategies, p.replay.test.shocks())
    ev = settings.evaluation
    shocks = shock_matrix(p, ev.seed, ev.episodes, ev.antithetic)
    return evaluate(p, strategies, shocks, ev.antithetic)


def run_references(p: MarketParams) -> list[Strategy]:
    """TWAP and the exact benchmarks that a run reports next to the agent (on replayed bars:
    TWAP, VWAP, the calibrated optimum and the hindsight bound, on the test windows)."""
    if p.replay is not None:
        return replay_references(p, p.replay.test)
    return reference_strategies(p, runs_only=True)


def sanity_warnings(evaluation: Evaluation, exact: bool) -> list[str]:
    """What makes a reported number not what it seems: a strategy beating the exact optimum, an
    approximate optimum, a clipped optimum, lot rounding."""
    warnings = [
        f"{name} beats the exact optimum by more than 3 standard errors: a look-ahead leak or a bug"
        for name in (evaluation.beats_optimum() if exact else [])
    ]
    if not exact and evaluation.params.replay is None:
        warnings.append(
            f"price_model {evaluation.params.price_model} with drift has no exact optimum on "
            "(q, S): 'optimal' is an approximation (the GBM recursion's policy), so no gap "
            "captured and no look-ahead check are reported"
        )
    optimal = evaluation.optimal_strategy
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
    return warnings


def trained_agents(evaluation: Evaluation) -> list[str]:
    """The names of the trained agents among the evaluated strategies: those whose kind is in
    the agent registry."""
    return [
        s.name
        for s in evaluation.strategies
        if isinstance(s, GreedyAgent) and s.agent.kind in AGENTS
    ]


def run_report(
    settings: Settings,
    evaluation: Evaluation,
    extra: dict[str, Any],
    warnings: Sequence[str] = (),
    printed: Sequence[str] = (),
    provenance: Provenance | None = None,
) -> RunReport:
    """Everything a run's report shows, computed, with no console and no file: the statistics
    of every strategy, the exact costs, the seeds summary, the replay summary and the warnings.

    `extra` holds `training` (rl-exec run) or `checkpoint` (rl-exec evaluate); `warnings` are the
    training's; `printed` (the market's) are listed first.
    """
    p = evaluation.params
    solution = None if p.replay is not None else solve_lq(p)
    exact = solution is not None and solution.exact
    replay = None
    if p.replay is not None:  # no exact optimum on real bars: the hindsight bound instead
        metrics = with_hindsight(evaluation, evaluation.metrics())
        replay = replay_summary(evaluation, p.replay)
    else:
        metrics = {
            name: replace(m, exact=exact_values(p, name))
            for name, m in evaluation.metrics(exact_gap=optimum_gap(p) if exact else None).items()
        }
    agents = trained_agents(evaluation)
    seeds = _seeds_summary(metrics, agents, settings.simulation.seed) if len(agents) > 1 else None
    twap_exact = metrics["twap"].exact
    return RunReport(
        episodes=evaluation.episodes,
        evaluation_seed=settings.evaluation.seed,
        settings=settings,
        exact=ExactCosts(
            cost_twap=None if twap_exact is None else twap_exact.cost_mean_exact,
            cost_optimal=solution.expected_cost if solution is not None and exact else None,
        ),
        strategies=metrics,
        warnings=[*printed, *warnings, *sanity_warnings(evaluation, exact)],
        training=extra.get("training"),
        checkpoint=extra.get("checkpoint"),
        seeds_summary=seeds,
        replay=replay,
        provenance=provenance,
        agents=agents,
    )


def write_report(
    data: RunReport,
    evaluation: Evaluation,
    run_dir: Path,
    console: Console,
    loud: Sequence[str] = (),
    printed: int = 0,
) -> dict[str, Path]:
    """Print a computed report's tables and write metrics.json, report.md and the plots. The
    report's warnings are its first `printed` (shown already), `loud` (the training's, printed
    in red), then its own (printed in yellow)."""
    p = evaluation.params
    replay = data.replay
    if replay is not None:
        console.print(splits_table(replay))
    what = "replayed test windows" if replay is not None else "shared-shock episodes"
    console.print(metrics_table(data.strategies, evaluation.episodes, what))
    console.print(savings_table(data.strategies))
    agents = list(data.agents)
    if data.seeds_summary is not None:
        console.print(seeds_table(data.seeds_summary))
    print_warnings(console, loud, loud=True)
    print_warnings(console, data.warnings[printed + len(loud) :])
    outputs = {
        "metrics": run_dir / "metrics.json",
        "report": run_dir / "report.md",
        "execution plot": run_dir / "execution_analysis.png",
        "savings plot": run_dir / "is_distribution.png",
        "frontier plot": run_dir / "frontier.png",
    }
    if replay is not None:
        console.print(sessions_table(replay, agents))
        for line in verdicts(dict(data.strategies), agents):
            console.print(line, highlight=False)
    write_json(outputs["metrics"], data.to_json())
    save_episode_costs(run_dir / EPISODES_FILE, evaluation)  # for rl-exec compare, paired
    focus = agents[0] if agents else list(evaluation.outcomes)[-1]
    references = ("twap", "vwap", "optimal", CALIBRATED)
    shown = [n for n in references if n in evaluation.outcomes] + agents
    plot_execution(evaluation, outputs["execution plot"], shown)
    plot_savings(evaluation, outputs["savings plot"], agents or [focus])
    plots = {"inventory": "execution_analysis.png", "savings": "is_distribution.png"}
    if replay is not None:  # the efficient frontier is the simulated model's, not the bars'
        del outputs["frontier plot"]
    else:
        curve = frontier(p)
        plot_frontier(evaluation, curve, outputs["frontier plot"], ["twap", "optimal", *agents])
        plots["frontier"] = "frontier.png"
    write_text_atomic(outputs["report"], markdown_report(data, plots))
    return outputs


def seed_list(master: int, count: int) -> list[int]:
    """Independent training seeds split from the master seed."""
    if count == 1:
        return [master]
    return [
        int(s.generate_state(1)[0] % 2**31) for s in np.random.SeedSequence(master).spawn(count)
    ]


def run_experiment(
    settings: Settings, run_dir: Path, console: Console, seeds: int = 1
) -> RunReport | BookReport:
    """`rl-exec run`: train (once per seed), evaluate against TWAP and the exact benchmarks. The
    limit-order book market has its own pipeline (`book_experiment`)."""
    if settings.simulation.price_model == "book":
        from rl_order_execution.book_experiment import run_book

        return run_book(settings, run_dir, console, seeds)
    started = now_utc()
    run_dir.mkdir(parents=True, exist_ok=True)
    p = MarketParams.of(settings)
    noted = market_warnings(settings, p)
    print_warnings(console, noted)
    agents: list[Strategy] = []
    training: dict[str, Any] = {}
    warnings: list[str] = []
    manifest, resumes = RunManifest("run", settings, seeds), []
    for seed in seed_list(settings.simulation.seed, seeds):
        seeded = settings.model_copy(
            update={"simulation": settings.simulation.model_copy(update={"seed": seed})}
        )
        name, folder = (
            ("agent", run_dir) if seeds == 1 else (f"agent-{seed}", run_dir / f"seed-{seed}")
        )
        folder.mkdir(parents=True, exist_ok=True)
        console.print(f"[bold]training[/bold] {name} (seed {seed})", highlight=False)
        resumes.append(resumable(manifest, folder, seed, seeded))
        try:
            result = train_with_progress(seeded, p, folder, console, resumes[-1])
        except TrainingInterrupted as exc:
            raise interrupted(manifest, run_dir, exc) from None
        save_checkpoint(folder / "model.pt", result, seeded)
        agents.append(GreedyAgent(result.agent, name=name))
        training[name], notes = training_outcome(name, seeded, p, result, console)
        warnings += notes
    evaluation = evaluate_strategies(settings, p, [*run_references(p), *agents])
    extra = {"training": training}
    training_seeds = seed_list(settings.simulation.seed, seeds)
    provenance = Provenance.of(settings, started, training_seeds)
    data = run_report(settings, evaluation, extra, warnings, noted, provenance)
    outputs = write_report(data, evaluation, run_dir, console, warnings, len(noted))
    for resume in resumes:  # the run is complete: nothing left to resume
        resume.finish()
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
    if settings.simulation.price_model in ("replay", "book"):
        raise SettingsError(
            "rl-exec benchmark checks the simulated model's closed forms against Monte Carlo; "
            f"price_model {settings.simulation.price_model} has none (use rl-exec run)"
        )
    p = MarketParams.of(settings)
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
    if settings.simulation.price_model == "book":
        raise SettingsError(
            "rl-exec train saves checkpoints of the simulated and replayed markets; on price_model "
            "book use rl-exec run (it trains, evaluates and reports)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    p = MarketParams.of(settings)
    print_warnings(console, market_warnings(settings, p))
    manifest = RunManifest("train", settings)
    resume = resumable(manifest, run_dir, settings.simulation.seed, settings)
    try:
        result = train_with_progress(settings, p, run_dir, console, resume)
    except TrainingInterrupted as exc:
        raise interrupted(manifest, run_dir, exc) from None
    path = run_dir / "model.pt"
    save_checkpoint(path, result, settings)
    resume.finish()
    print_warnings(
        console, training_outcome("the agent", settings, p, result, console)[1], loud=True
    )
    print_outputs(console, {"checkpoint": path, "tensorboard": run_dir})
    return path


def market_for_evaluation(trained: Settings, market: Settings, source: str) -> Settings:
    """The trained agent's settings on the market of `market` (its simulation, replay and book
    sections, and its evaluation section), refused in one line where the agent cannot act there:
    another action kind, another number of discrete actions, other observation features."""
    old, new = trained.simulation, market.simulation
    spec = agent_spec(settings_kind(trained))
    if (old.price_model == "book") != (new.price_model == "book"):
        kinds = {True: "the book market's order menu", False: "a trading speed"}
        raise SettingsError(
            f"{source}: the {spec.kind} agent acts with {kinds[old.price_model == 'book']}; this "
            f"market needs {kinds[new.price_model == 'book']} (another action kind)"
        )
    if new.price_model == "book":
        from rl_order_execution.agents.book import action_set, book_params
        from rl_order_execution.market.book.dynamics import continuous_bounds

        p, trained_p = book_params(market), book_params(trained)
        on_menu = action_set(spec.kind) == "menu"  # the Double DQN and PPO on the book
        if on_menu and len(p.actions) != len(trained_p.actions):
            raise SettingsError(
                f"{source}: book.book_actions has {len(p.actions)} actions; the {spec.kind} agent "
                f"was trained with {len(trained_p.actions)}"
            )
        box, trained_box = continuous_bounds(p), continuous_bounds(trained_p)
        if not on_menu and box != trained_box:  # SAC's [-1, 1] maps onto [-M, max_depth]
            raise SettingsError(
                f"{source}: the book's continuous action spans [{box[0]:g}, {box[1]:g}] (its "
                f"largest market order and book.max_depth); the {spec.kind} agent was trained on "
                f"[{trained_box[0]:g}, {trained_box[1]:g}]"
            )
    elif not spec.continuous and len(new.action_multipliers) != len(old.action_multipliers):
        raise SettingsError(
            f"{source}: simulation.action_multipliers has {len(new.action_multipliers)} actions; "
            f"the {spec.kind} agent was trained with {len(old.action_multipliers)}"
        )
    if list(new.extra_features) != list(old.extra_features):
        raise SettingsError(
            f"{source}: simulation.extra_features {list(new.extra_features)} differ from the "
            f"agent's observation features {list(old.extra_features)}"
        )
    sections = {"simulation": new, "replay": market.replay, "evaluation": market.evaluation}
    return trained.model_copy(update=sections | {"book": market.book})


def evaluate_checkpoint(
    loaded: LoadedAgent, checkpoint: Path, settings: Settings, run_dir: Path, console: Console
) -> RunReport:
    """`rl-exec evaluate`: the saved agent vs TWAP on settings.simulation (the trained market,
    or another one that `market_for_evaluation` accepted)."""
    replayed = settings.simulation.price_model == "replay"
    test_set = (
        "the replayed test windows"
        if replayed
        else f"{settings.evaluation.episodes:,} test episodes"
    )
    console.print(f"evaluating {checkpoint} on {test_set}")
    started = now_utc()
    p = MarketParams.of(settings)
    noted = market_warnings(settings, p)
    print_warnings(console, noted)
    strategies = [*run_references(p), GreedyAgent(loaded.agent)]
    evaluation = evaluate_strategies(settings, p, strategies)
    extra = {"checkpoint": str(checkpoint)}
    warnings = _checkpoint_warnings(loaded.payload.get("training", {}))
    provenance = Provenance.of(settings, started)
    data = run_report(settings, evaluation, extra, warnings, noted, provenance)
    outputs = write_report(data, evaluation, run_dir, console, warnings, len(noted))
    print_outputs(console, outputs)
    return data


def _checkpoint_warnings(training: dict[str, Any]) -> list[str]:
    """The training record a checkpoint carries, judged as after `run`."""
    updates = training.get("updates")
    if updates is None or updates >= FEW_UPDATES:
        return []
    verdict = "barely trained" if updates else "its results are those of its initial network"
    return [f"the checkpoint's agent made {updates:,} gradient updates in training: {verdict}"]
