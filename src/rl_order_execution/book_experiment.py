"""`rl-exec run` on the limit-order book market (`simulation.price_model: book`), end to end: the
`book:` section validated once into a BookParams, the exact references solved once, the agent
trained (once per seed) with progress and TensorBoard, every strategy evaluated on the same test
draws, then metrics.json, report.md, the policy map and the console table. Also the calibration
command's library function and the book's throughput measurement."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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

from rl_order_execution.agents.book import (
    BookAgent,
    BookTrainResult,
    action_set,
    as_policy,
    book_params,
    reward_unit,
    tabulate,
    train_book_agent,
)
from rl_order_execution.agents.checkpoint import LoadedBookAgent, save_book_checkpoint
from rl_order_execution.agents.training import ScalarLogger
from rl_order_execution.config import Settings, flatten
from rl_order_execution.errors import SettingsError
from rl_order_execution.evaluation.book import OPTIMA, BookReferences, book_metrics
from rl_order_execution.evaluation.statistics import SeedsSummary, across_seeds
from rl_order_execution.files import write_json, write_text_atomic
from rl_order_execution.market.book import (
    BookParams,
    calibrate_book,
    calibration_yaml,
    evaluate,
)
from rl_order_execution.reporting.book import (
    AgentEntry,
    BookReport,
    book_markdown,
    book_table,
    headline,
    plot_policy_map,
)
from rl_order_execution.reporting.provenance import Provenance, now_utc
from rl_order_execution.reporting.tables import print_outputs
from rl_order_execution.runs.episodes import EPISODES_FILE, save_episode_costs

FEW_UPDATES = 100  # fewer gradient updates than this and the agent is barely its initial network


def seed_list(master: int, count: int) -> list[int]:
    """Independent training seeds split from the master seed (the master itself for one)."""
    if count == 1:
        return [master]
    return [
        int(s.generate_state(1)[0] % 2**31) for s in np.random.SeedSequence(master).spawn(count)
    ]


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


def train_with_progress(
    settings: Settings, p: BookParams, run_dir: Path, console: Console
) -> BookTrainResult:
    """Train the configured agent on the book market with a Rich progress bar and TensorBoard."""
    total = settings.rl.episodes
    columns = (
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes  return {task.fields[ret]:>8} bps"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with (
        _tensorboard(settings, run_dir) as logger,
        Progress(*columns, console=console, disable=not settings.logging.progress) as bar,
    ):
        task = bar.add_task("train", total=total, ret="n/a")
        last = [0.0]

        def progress(done: int, stats: dict[str, float]) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.1 or done >= total:
                last[0] = now
                ret = stats["return_bps"]
                bar.update(
                    task, completed=min(done, total), ret="n/a" if np.isnan(ret) else f"{ret:.3f}"
                )

        return train_book_agent(settings, p, logger=logger, progress=progress)


def training_record(result: BookTrainResult, settings: Settings) -> dict[str, Any]:
    """What metrics.json says of one training."""
    return {
        "kind": settings.rl.agent,
        "episodes": result.episodes,
        "episodes_asked": settings.rl.episodes,
        "updates": result.updates,
        "seconds": result.seconds,
        "best_validation_bps": result.best_validation_bps,
        "seed": settings.simulation.seed,
        "reward_unit": result.unit,
    }


def training_warnings(name: str, result: BookTrainResult) -> list[str]:
    if result.updates == 0:
        return [f"{name} made no gradient update: its results are those of its initial network"]
    if result.updates < FEW_UPDATES:
        return [f"{name} made only {result.updates:,} gradient updates: it is barely trained"]
    return []


@dataclass
class Trained:
    name: str
    seed: int
    result: BookTrainResult


def _train_all(
    settings: Settings, p: BookParams, run_dir: Path, console: Console, seeds: int
) -> list[Trained]:
    out = []
    for seed in seed_list(settings.simulation.seed, seeds):
        seeded = settings.model_copy(
            update={"simulation": settings.simulation.model_copy(update={"seed": seed})}
        )
        name, folder = (
            ("agent", run_dir) if seeds == 1 else (f"agent-{seed}", run_dir / f"seed-{seed}")
        )
        folder.mkdir(parents=True, exist_ok=True)
        console.print(
            f"[bold]training[/bold] {name} ({settings.rl.agent}, seed {seed})", highlight=False
        )
        result = train_with_progress(seeded, p, folder, console)
        console.print(
            f"trained {result.episodes:,} episodes ({settings.rl.episodes:,} asked), "
            f"{result.updates:,} gradient updates in {result.seconds:.1f} s; best validation cost "
            f"savings vs TWAP {result.best_validation_bps:.4f} bps",
            highlight=False,
        )
        save_book_checkpoint(
            folder / "model.pt", result.agent, seeded, training_record(result, seeded)
        )
        out.append(Trained(name, seed, result))
    return out


def run_book(settings: Settings, run_dir: Path, console: Console, seeds: int = 1) -> BookReport:
    """`rl-exec run` on price_model book: train, evaluate against TWAP, passive and both exact
    optima on the same test draws, report."""
    started = now_utc()
    p = book_params(settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    console.print(p.describe(), markup=False, highlight=False, soft_wrap=True)
    references = BookReferences.solve(p)
    trained = _train_all(settings, p, run_dir, console, seeds)
    report = _tested(
        settings,
        p,
        references,
        {t.name: t.result.agent for t in trained},
        run_dir,
        unit=trained[0].result.unit,
        warnings=[w for t in trained for w in training_warnings(t.name, t.result)],
        training={t.name: training_record(t.result, settings) for t in trained},
        provenance=Provenance.of(settings, started, [t.seed for t in trained]),
    )
    first = trained[0]
    return write_book_report(
        report, p, references, (first.name, first.result.agent), run_dir, console
    )


def evaluate_book_checkpoint(
    loaded: LoadedBookAgent, checkpoint: Path, settings: Settings, run_dir: Path, console: Console
) -> BookReport:
    """`rl-exec evaluate` of a book-market agent: against TWAP, passive and both exact optima on
    the test draws of settings.evaluation, on the book market of `settings` (the trained one, or
    another one `market_for_evaluation` accepted)."""
    started = now_utc()
    ev = settings.evaluation
    console.print(f"evaluating {checkpoint} on {ev.episodes:,} test episodes", highlight=False)
    p = book_params(settings)
    console.print(p.describe(), markup=False, highlight=False, soft_wrap=True)
    references = BookReferences.solve(p)
    training = dict(loaded.payload.get("training") or {})
    report = _tested(
        settings,
        p,
        references,
        {"agent": loaded.agent},
        run_dir,
        unit=float(training.get("reward_unit", reward_unit(p))),
        warnings=[],
        training={"agent": training | {"checkpoint": str(checkpoint)}},
        provenance=Provenance.of(settings, started, [loaded.settings.simulation.seed]),
    )
    return write_book_report(report, p, references, ("agent", loaded.agent), run_dir, console)


def _tested(
    settings: Settings,
    p: BookParams,
    references: BookReferences,
    agents: dict[str, BookAgent],
    run_dir: Path,
    *,
    unit: float,
    warnings: list[str],
    training: dict[str, Any],
    provenance: Provenance,
) -> BookReport:
    """The references and the agents (by name) on the test draws of settings.evaluation: their
    report (the keywords: how the agents came to be), and each episode's costs saved for rl-exec
    compare's paired intervals."""
    ev = settings.evaluation
    policies = [*references.policies(p), *(as_policy(a, name) for name, a in agents.items())]
    evaluation = evaluate(p, policies, ev.episodes, ev.seed)
    sets = {name: action_set(a.kind) for name, a in agents.items()}
    metrics = book_metrics(evaluation, references, sets)
    entries = {name: AgentEntry(agents[name].kind, s) for name, s in sets.items()}
    report = BookReport(
        episodes=ev.episodes,
        evaluation_seed=ev.seed,
        settings=settings,
        market=p.describe(),
        exact=references.exact,
        advantage_bps={s: references.gap_bps(p, s) for s in OPTIMA},
        strategies=metrics,
        agents=entries,
        reward_unit=unit,
        warnings=warnings,
        training=training,
        seeds_summary=_seeds_summary(metrics, entries, settings.simulation.seed),
        provenance=provenance,
    )
    save_episode_costs(run_dir / EPISODES_FILE, evaluation)
    return report


def _seeds_summary(
    metrics: dict[str, Any], agents: dict[str, AgentEntry], seed: int
) -> SeedsSummary | None:
    if len(agents) < 2:
        return None
    savings = [metrics[n].savings_cost.avg_savings_bps for n in agents]
    shares = [s.value for n, a in agents.items() if (s := metrics[n].share(a.action_set))]
    return SeedsSummary(
        cost_savings_bps=across_seeds(savings, seed),
        gap_captured=across_seeds(shares, seed) if len(shares) == len(agents) else None,
    )


def write_book_report(
    report: BookReport,
    p: BookParams,
    references: BookReferences,
    pictured: tuple[str, BookAgent],
    run_dir: Path,
    console: Console,
) -> BookReport:
    """Print the table and the headlines; write metrics.json, report.md and the policy map (of
    the `pictured` agent, by name, beside its action set's optimum)."""
    console.print(book_table(report))
    for name in report.agents:
        console.print(headline(report, name), highlight=False, soft_wrap=True)
    for text in report.warnings:
        console.print(f"[bold red]warning:[/bold red] {text}", highlight=False, soft_wrap=True)
    outputs = {
        "run folder": run_dir,
        "metrics": run_dir / "metrics.json",
        "report": run_dir / "report.md",
        "policy plot": run_dir / "policy_map.png",
    }
    if (run_dir / "model.pt").is_file():
        outputs["checkpoint"] = run_dir / "model.pt"
    write_json(outputs["metrics"], report.to_json())
    name, agent = pictured
    continuous = agent.continuous
    optimum = references.continuous if continuous else references.menu
    panels = [
        (OPTIMA[action_set(agent.kind)], np.asarray(optimum.policy)),
        (name, tabulate(p, agent)),
    ]
    plot_policy_map(p, panels, continuous, outputs["policy plot"])
    write_text_atomic(outputs["report"], book_markdown(report, {"policy map": "policy_map.png"}))
    if any(run_dir.glob("events.out.tfevents.*")):  # a training's, not an evaluation's
        outputs["tensorboard"] = run_dir
    print_outputs(console, outputs)
    return report


# --- calibration ------------------------------------------------------------------------------


def calibrate_book_file(source: Path, out: Path, overwrite: bool = False) -> str:
    """`rl-exec calibrate-book`: calibrate on a top-of-book file and write the config YAML
    atomically; refuses to replace an existing file unless `overwrite`. Returns the YAML."""
    if out.exists() and not overwrite:
        raise SettingsError(f"{out} exists; pass --overwrite to replace it")
    text = calibration_yaml(calibrate_book(source))
    write_text_atomic(out, text)
    return text


# --- throughput -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookThroughput:
    """Vector-env steps per second at a batch size, and the time of one paired evaluation."""

    batch: int
    env_steps_per_second: float
    evaluation_episodes: int
    evaluation_strategies: int
    evaluation_seconds: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "batch": self.batch,
            "env_steps_per_second": self.env_steps_per_second,
            "evaluation_episodes": self.evaluation_episodes,
            "evaluation_strategies": self.evaluation_strategies,
            "evaluation_seconds": self.evaluation_seconds,
        }


def measure_throughput(
    p: BookParams | None = None, batch: int = 16_384, episodes: int = 10_000, steps: int = 600
) -> BookThroughput:
    """Book vector env (menu actions, random) steps per second at `batch` episodes (each env step
    counts `batch` steps), and one evaluation of `episodes` episodes of every reference strategy
    (TWAP, passive, both optima) plus an observation policy like an agent's."""
    from rl_order_execution.market.book import BookVecEnv, ObservationPolicy

    p = p or BookParams.default()
    env = BookVecEnv(batch, p)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    actions = rng.integers(0, p.n_actions, size=(steps, batch))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    rate = steps * batch / (time.perf_counter() - start)
    references = BookReferences.solve(p)

    def limit_one(obs: np.ndarray) -> np.ndarray:
        return np.full(len(obs), 2, dtype=np.int64)

    policies = [*references.policies(p), ObservationPolicy("observation", limit_one)]
    start = time.perf_counter()
    evaluate(p, policies, episodes, 0)
    seconds = time.perf_counter() - start
    return BookThroughput(batch, rate, episodes, len(policies), seconds)
