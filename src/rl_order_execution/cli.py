"""`rl-exec`: commands parse options, build the Settings once, call one library function."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import torch
import typer
import typer.core
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from rl_order_execution.config import (
    DEFAULT_BEST_PARAMS_PATH,
    DEFAULT_CONFIG_PATH,
    Settings,
    SettingsError,
    configure_logging,
    flatten,
    format_validation_error,
    load_settings,
    value_sources,
)
from rl_order_execution.errors import UserError

app = typer.Typer(
    name="rl-exec",
    help="Optimal trade execution with deep RL: train, evaluate, benchmark, tune.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Prepare market data for historical replay.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
PIPE_WIDTH = 200  # columns when output goes to a file or pipe (Rich would wrap at 80)

_value_type = typer.core.TyperOption.display_type_rich


def _flag_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: show none, where Typer's Rich help would print <bool>."""
    return None if self.is_flag and not self.count else _value_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]


def _print_version(value: bool) -> None:
    if value:
        from rl_order_execution import __version__

        console.print(f"rl-exec {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _wide_without_terminal(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Without a terminal (a pipe, a file, CI logs) print wide, so tables never cut names."""
    for out in (console, err_console):
        if not out.is_terminal and "COLUMNS" not in os.environ:
            out.width = PIPE_WIDTH


P = ParamSpec("P")
R = TypeVar("R")
_Model = TypeVar("_Model", bound=BaseModel)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML config file (default: config/config.yaml if present)."),
]
EpisodesOpt = Annotated[int | None, typer.Option("--episodes", help="Training episodes.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Master training seed.")]
AgentOpt = Annotated[
    str | None,
    typer.Option(
        "--agent", help="ddqn (discrete speeds, the default), ppo or sac (continuous speed)."
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        help="The run folder itself (default: output/runs/<run name>, the run name being "
        "--run-name or the date, time and seed); refused if it holds files, unless --overwrite.",
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace an existing run folder: its old contents are removed first."
    ),
]
ResumeOpt = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        help="Continue the interrupted run in this folder from its last checkpoint (resume.pt); "
        "every setting comes from the checkpoint (only a larger --episodes may be added).",
    ),
]
RunNameOpt = Annotated[
    str | None, typer.Option("--run-name", help="Run folder name under output/runs.")
]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda or auto.")]
EvalEpisodesOpt = Annotated[
    int | None, typer.Option("--eval-episodes", help="Shared-shock test episodes.")
]
EvalSeedOpt = Annotated[
    int | None,
    typer.Option(
        "--eval-seed",
        help="Seed of the test episodes (evaluation.seed): fresh episodes, to see how much a "
        "figure owes to one test set.",
    ),
]
NoBestOpt = Annotated[
    bool, typer.Option("--no-best-params", help="Ignore config/best_params.yaml.")
]


# a path the user gave that cannot be used (exit 2); other OS errors (disk full, I/O) exit 1
PATH_MISTAKES = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EEXIST,
        errno.EROFS,
        errno.ENAMETOOLONG,
    }
)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A user mistake ends in one clear message on stderr and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except UserError as exc:  # settings, data, checkpoints, resume: one line naming it
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # Ctrl-C: one line, the shell's exit code for SIGINT
            err_console.print(f"interrupted: {str(exc) or 'stopped by Ctrl-C'}", highlight=False)
            raise typer.Exit(130) from None
        except ValueError as exc:  # e.g. --device cuda without a GPU
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except OSError as exc:  # e.g. an --output-dir that cannot be created or written
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"[red]error:[/red] {where}{exc.strerror or exc}", highlight=False)
            raise typer.Exit(2 if exc.errno in PATH_MISTAKES else 1) from None

    return wrapper


def _overrides(**flags: Any) -> dict[str, Any]:
    keys = {
        "episodes": "rl.episodes",
        "seed": "simulation.seed",
        "device": "rl.device",
        "eval_episodes": "evaluation.episodes",
        "agent": "rl.agent",
        "tuning_episodes": "optimization.tuning_episodes",
        "validation_episodes": "optimization.validation_episodes",
    }
    return {keys[k]: v for k, v in flags.items() if v is not None}


def build_settings(
    config: Path | None, no_best_params: bool = False, **flags: Any
) -> tuple[Settings, list[tuple[str, str]]]:
    settings, applied = load_settings(
        overrides=_overrides(**flags),
        config_path=config or DEFAULT_CONFIG_PATH,
        best_params_path=None if no_best_params else DEFAULT_BEST_PARAMS_PATH,
        require_config=config is not None,
    )
    configure_logging(settings.logging)
    for name, kind in applied:  # kind tuned/note: the line about config/best_params.yaml
        line = name if kind in ("tuned", "note") else f"using {name}"
        console.print(f"[dim]{line}[/dim]", highlight=False, soft_wrap=True)
    _note_unused(settings, config, no_best_params, _overrides(**flags))
    return settings, applied


def _note_unused(
    settings: Settings, config: Path | None, no_best_params: bool, overrides: dict[str, Any]
) -> None:
    """One note line naming the settings the user set that replay with relative impact ignores."""
    if settings.simulation.price_model != "replay":
        return
    origin = value_sources(
        overrides,
        config_path=config or DEFAULT_CONFIG_PATH,
        best_params_path=None if no_best_params else DEFAULT_BEST_PARAMS_PATH,
    )
    note = settings.unused_by_replay({key for key, source in origin.items() if source})
    if note is not None:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)


def _run_dir(settings: Settings, output_dir: Path | None, run_name: str | None) -> Path:
    from rl_order_execution.runs.folders import default_run_dir

    return output_dir or default_run_dir(settings, run_name)


@app.command()
@user_errors
def run(
    config: ConfigOpt = None,
    episodes: EpisodesOpt = None,
    seed: SeedOpt = None,
    output_dir: OutputOpt = None,
    run_name: RunNameOpt = None,
    device: DeviceOpt = None,
    eval_episodes: EvalEpisodesOpt = None,
    no_best_params: NoBestOpt = False,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds", min=1, max=100, help="Independent trainings (seeds) to compare (default 1)."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = None,
    agent: AgentOpt = None,
) -> None:
    """Train the agent, evaluate it against TWAP and the exact optimum on shared shocks."""
    from rl_order_execution.experiment import run_experiment
    from rl_order_execution.runs.folders import run_folder

    if resume is not None:
        flags: dict[str, Any] = {"--episodes": episodes, "--seed": seed, "--device": device}
        flags |= {"--seeds": seeds}
        flags |= {"--eval-episodes": eval_episodes, "--config": config, "--overwrite": overwrite}
        flags |= {"--output-dir": output_dir, "--run-name": run_name, "--agent": agent}
        manifest = _resumed(resume, "run", flags | {"--no-best-params": no_best_params})
        with run_folder(resume, manifest.settings.rl.device, resume=True):
            run_experiment(manifest.settings, resume, console, seeds=manifest.seeds)
        return
    settings, _ = build_settings(
        config,
        no_best_params,
        episodes=episodes,
        seed=seed,
        device=device,
        eval_episodes=eval_episodes,
        agent=agent,
    )
    out = _run_dir(settings, output_dir, run_name)
    with run_folder(out, settings.rl.device, overwrite):
        run_experiment(settings, out, console, seeds=seeds or 1)


def _resumed(run_dir: Path, command: str, flags: dict[str, Any]) -> Any:
    """The run's manifest, the flags checked against it; logging as the run was set up."""
    from rl_order_execution.runs.resume import resumed_run

    manifest = resumed_run(run_dir, command, flags)
    configure_logging(manifest.settings.logging)
    console.print(f"[dim]resuming {run_dir} from its checkpoint[/dim]", highlight=False)
    return manifest


@app.command()
@user_errors
def train(
    config: ConfigOpt = None,
    episodes: EpisodesOpt = None,
    seed: SeedOpt = None,
    output_dir: OutputOpt = None,
    run_name: RunNameOpt = None,
    device: DeviceOpt = None,
    no_best_params: NoBestOpt = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = None,
    agent: AgentOpt = None,
) -> None:
    """Train the agent and save its checkpoint (model.pt) and TensorBoard logs."""
    from rl_order_execution.experiment import train_only
    from rl_order_execution.runs.folders import run_folder

    if resume is not None:
        flags: dict[str, Any] = {"--episodes": episodes, "--seed": seed, "--device": device}
        flags |= {"--config": config, "--agent": agent}
        flags |= {"--output-dir": output_dir, "--run-name": run_name, "--overwrite": overwrite}
        manifest = _resumed(resume, "train", flags | {"--no-best-params": no_best_params})
        with run_folder(resume, manifest.settings.rl.device, resume=True):
            train_only(manifest.settings, resume, console)
        return
    settings, _ = build_settings(
        config, no_best_params, episodes=episodes, seed=seed, device=device, agent=agent
    )
    out = _run_dir(settings, output_dir, run_name)
    with run_folder(out, settings.rl.device, overwrite):
        train_only(settings, out, console)


@app.command()
@user_errors
def evaluate(
    run: Annotated[
        Path | None,
        typer.Argument(
            help="A run folder (its model.pt); or give --checkpoint.", show_default=False
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A model.pt written by run/train.")
    ] = None,
    market: Annotated[
        Path | None,
        typer.Option(
            "--market",
            help="A config file whose market (simulation, replay, book, evaluation) to evaluate "
            "on instead of the trained one; written to <run>/evaluations/<name>.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The evaluation's folder name (default: the file's stem)."),
    ] = None,
    config: ConfigOpt = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Folder for this evaluation (default: evaluations/<date-time>, or "
            "evaluations/<name> with --market, in the checkpoint's folder; the run's own files "
            "are never touched).",
        ),
    ] = None,
    run_name: Annotated[
        str | None,
        typer.Option("--run-name", help="Write the evaluation to output/runs/<name> instead."),
    ] = None,
    device: DeviceOpt = None,
    eval_episodes: EvalEpisodesOpt = None,
    eval_seed: EvalSeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Evaluate a saved agent against TWAP on shared shocks: on the market it was trained on, or
    on another one (--market CONFIG: a shifted volatility, a jump market, a replay file).

    --config CONFIG is the same as --market CONFIG: its market is used (or refused, when the
    agent cannot act there), never silently dropped. Results go to a folder of their own; the
    run that wrote the checkpoint is never rewritten.
    """
    from rl_order_execution.agents.checkpoint import LoadedBookAgent, load_any_checkpoint
    from rl_order_execution.experiment import evaluate_checkpoint, market_for_evaluation
    from rl_order_execution.runs.folders import run_folder

    checkpoint = _checkpoint_of(run, checkpoint)
    if market is not None and config is not None:
        raise SettingsError("--market and --config: give one market file, not both")
    market = market or config
    _note_ignored_env(market is not None)
    loaded = load_any_checkpoint(checkpoint, device or "cpu")
    settings = loaded.settings
    if market is not None:
        settings = market_for_evaluation(settings, build_settings(market, True)[0], str(market))
    changes = {"episodes": eval_episodes, "seed": eval_seed}
    if changes := {key: value for key, value in changes.items() if value is not None}:
        evaluation = _validated(settings.evaluation, **changes)
        settings = settings.model_copy(update={"evaluation": evaluation})
    if name is not None and (market is None or output_dir is not None or run_name is not None):
        raise SettingsError("--name names the folder of an evaluation on --market; give --market")
    out = output_dir or _evaluation_out(settings, checkpoint, market, name, run_name)
    with run_folder(out, device or "cpu", overwrite, keep=checkpoint):
        if isinstance(loaded, LoadedBookAgent):
            from rl_order_execution.book_experiment import evaluate_book_checkpoint

            evaluate_book_checkpoint(loaded, checkpoint, settings, out, console)
        else:
            evaluate_checkpoint(loaded, checkpoint, settings, out, console)


def _checkpoint_of(run: Path | None, checkpoint: Path | None) -> Path:
    """The checkpoint an evaluate command names: RUN's model.pt, or --checkpoint."""
    if (run is None) == (checkpoint is None):
        raise SettingsError("evaluate: give a run folder (RUN) or --checkpoint FILE, one of them")
    if checkpoint is not None:
        return checkpoint
    assert run is not None
    if not run.is_dir():
        raise SettingsError(f"RUN {run}: not a folder (a run folder holds model.pt)")
    if not (run / "model.pt").is_file():
        seeds = sorted(p.name for p in run.glob("seed-*/model.pt"))
        hint = f"; it has one per seed: give --checkpoint {run}/seed-<k>/model.pt" if seeds else ""
        raise SettingsError(f"RUN {run}: no model.pt in this folder{hint}")
    return run / "model.pt"


def _evaluation_out(
    settings: Settings,
    checkpoint: Path,
    market: Path | None,
    name: str | None,
    run_name: str | None,
) -> Path:
    if run_name is not None:
        return _run_dir(settings, None, run_name)
    if market is None:
        from rl_order_execution.runs.folders import evaluation_dir

        return evaluation_dir(checkpoint)
    folder = name or market.stem
    if not folder or "/" in folder or folder.startswith(".") or ".." in folder:
        raise SettingsError(f"--name {folder!r}: a folder name, without '/', '..' or a leading '.'")
    return checkpoint.parent / "evaluations" / folder


def _note_ignored_env(config_given: bool) -> None:
    """evaluate runs the checkpoint's market and agent: say so when RL_* variables ask otherwise."""
    sections = ["SIMULATION", "RL"] + ([] if config_given else ["EVALUATION"])
    prefixes = tuple(f"RL_{section}__" for section in sections)
    ignored = sorted(key for key in os.environ if key.upper().startswith(prefixes))
    if ignored:
        console.print(
            f"note: {', '.join(ignored)} not used: evaluate runs the market and agent settings "
            "saved in the checkpoint"
            + (
                ""
                if config_given
                else " (test settings: from --config, --eval-episodes or --eval-seed)"
            ),
            highlight=False,
        )


def _validated(section: _Model, **changes: Any) -> _Model:
    """A copy of a settings section with changes, validated like a config file would be."""
    try:
        return type(section).model_validate({**section.model_dump(), **changes})
    except ValidationError as exc:
        raise SettingsError(
            format_validation_error(exc).replace("setting ", "setting evaluation.")
        ) from None


@app.command()
@user_errors
def benchmark(
    config: ConfigOpt = None,
    output_dir: OutputOpt = None,
    run_name: RunNameOpt = None,
    eval_episodes: EvalEpisodesOpt = None,
    no_best_params: NoBestOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Self-check: every reference strategy's closed form vs Monte Carlo (exit 1 on mismatch).

    Writes into a run folder of its own (default: output/runs/benchmark-<date-time>)."""
    from rl_order_execution.experiment import run_benchmark
    from rl_order_execution.runs.folders import run_folder, stamped_name

    settings, _ = build_settings(config, no_best_params, eval_episodes=eval_episodes)
    out = _run_dir(settings, output_dir, run_name or stamped_name("benchmark"))
    with run_folder(out, "cpu", overwrite):
        passed = run_benchmark(settings, out, console)
    if not passed:
        raise typer.Exit(1)


@app.command()
@user_errors
def optimize(
    config: ConfigOpt = None,
    n_trials: Annotated[
        int | None,
        typer.Option("--n-trials", min=1, help="Study-wide total of complete or pruned trials."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=256, help="Worker processes sharing the storage.")
    ] = 1,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Optuna RDB URL (default sqlite:///db/optuna_study.db)."),
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study-name", help="Study name (a market hash is appended).")
    ] = None,
    verbatim_study_name: Annotated[
        bool, typer.Option("--verbatim-study-name", help="Use --study-name as is, no market hash.")
    ] = False,
    no_best_params: NoBestOpt = False,
    no_write: Annotated[
        bool, typer.Option("--no-write-best-params", help="Do not write config/best_params.yaml.")
    ] = False,
    agent: AgentOpt = None,
    tuning_episodes: Annotated[
        int | None,
        typer.Option(
            "--tuning-episodes", help="Training episodes per trial (optimization.tuning_episodes)."
        ),
    ] = None,
    validation_episodes: Annotated[
        int | None,
        typer.Option(
            "--validation-episodes",
            help="Validation episodes per trial (optimization.validation_episodes).",
        ),
    ] = None,
) -> None:
    """Tune the agent with Optuna (TPE, median pruning); write config/best_params.yaml.

    The file keeps one entry per agent kind and market; this writes the entry of the agent
    tuned on this market, only when it beats the current settings on validation.
    """
    from rl_order_execution.tuning import optimize as run_optimize

    budget = {"--tuning-episodes": tuning_episodes, "--validation-episodes": validation_episodes}
    for flag, value in budget.items():
        if value is not None and value < 1:
            raise SettingsError(f"{flag} must be a whole number >= 1 (got {value})")
    settings, _ = build_settings(
        config,
        no_best_params,
        agent=agent,
        tuning_episodes=tuning_episodes,
        validation_episodes=validation_episodes,
    )
    _print_market_warnings(settings)
    result = run_optimize(
        settings,
        storage=storage,
        study_name=study_name,
        workers=workers,
        n_trials=n_trials,
        best_params_path=None if no_write else DEFAULT_BEST_PARAMS_PATH,
        console=console,
        study_name_includes_market_hash=False if verbatim_study_name else None,
    )
    if not result.finished:
        raise typer.Exit(1)


def _print_market_warnings(settings: Settings) -> None:
    from rl_order_execution.experiment import market_warnings
    from rl_order_execution.market import MarketParams
    from rl_order_execution.runs.training import print_warnings

    if settings.simulation.price_model == "book":  # its own market: refuse bad settings now
        from rl_order_execution.agents.book import book_params

        book_params(settings)
        return
    print_warnings(console, market_warnings(settings, MarketParams.of(settings)))


@app.command()
@user_errors
def compare(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="RUN", help="Two or more finished run folders (output/runs/<name>)."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Folder for compare.md, compare.json and compare.png (default: a new folder "
            "under output/compare); refused if it holds files, unless --overwrite.",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """One table of the runs' headline numbers, each agent against the first run's.

    Runs evaluated on the same market and test episodes are compared paired, episode by
    episode; others unpaired, and the table says which.
    """
    from rl_order_execution.reporting import print_outputs
    from rl_order_execution.reporting.compare import write_comparison
    from rl_order_execution.runs.compare import check_output_dir, compare_runs, default_compare_dir
    from rl_order_execution.runs.folders import run_folder

    comparison = compare_runs(runs or [])
    out = output_dir or default_compare_dir()
    check_output_dir(out, runs or [])
    with run_folder(out, "cpu", overwrite):
        print_outputs(console, write_comparison(comparison, out, console))


@config_app.command("show")
@user_errors
def config_show(config: ConfigOpt = None, no_best_params: NoBestOpt = False) -> None:
    """Print every effective setting and where its value came from."""
    settings, _ = build_settings(config, no_best_params)
    origin = value_sources(
        config_path=config or DEFAULT_CONFIG_PATH,
        best_params_path=None if no_best_params else DEFAULT_BEST_PARAMS_PATH,
    )
    table = Table(title="Effective settings")
    for col in ("setting", "value", "source"):
        table.add_column(col)
    for key, value in flatten(settings).items():
        table.add_row(key, str(value), origin.get(key, "default"))
    console.print(table)


@data_app.command("bars")
@user_errors
def data_bars(
    ticks: Annotated[Path, typer.Argument(help="CSV of ticks: timestamp, price, size.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bar CSV to write.")],
    interval: Annotated[
        str, typer.Option("--interval", help="Bar length, a pandas offset: 1min, 5min, 1h.")
    ] = "1min",
    timestamp_column: Annotated[str, typer.Option(help="The ticks' time column.")] = "timestamp",
    price_column: Annotated[str, typer.Option(help="The ticks' price column.")] = "price",
    size_column: Annotated[str, typer.Option(help="The ticks' size column.")] = "size",
    timestamp_format: Annotated[
        str | None, typer.Option(help="strftime format (default: ISO 8601 or epoch seconds).")
    ] = None,
) -> None:
    """Turn ticks into OHLC bars with volume (intervals without ticks are left out)."""
    from rl_order_execution.data import ticks_to_bars
    from rl_order_execution.files import write_text_atomic

    bars = ticks_to_bars(
        ticks, interval, timestamp_column, price_column, size_column, timestamp_format
    )
    write_text_atomic(output, bars.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ"))
    console.print(
        f"wrote {len(bars):,} bars of {interval} ({bars['volume'].sum():,.0f} shares) to {output}",
        highlight=False,
    )


@app.command("calibrate-book")
@user_errors
def calibrate_book(
    source: Annotated[
        Path,
        typer.Argument(
            help="Top-of-book CSV or Parquet, one row per step: timestamp, bid, ask, bid_size, "
            "ask_size and optionally buy_high."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The config YAML to write.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
) -> None:
    """Calibrate the limit-order book market on a top-of-book file; write its config (a
    `book:` section with every estimate's standard error as a comment)."""
    from rl_order_execution.book_experiment import calibrate_book_file

    calibrate_book_file(source, out, overwrite)
    console.print(f"wrote {out} (use it with rl-exec run --config {out})", highlight=False)


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="The sweep's YAML spec: markets, agents, seeds.")],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Local one-thread worker processes (default: the number of cores).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Address of an existing Dask scheduler (tcp://host:port)."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="The sweep folder (default: output/sweeps/<name>)."),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Attempts after a cell's first failure.")
    ] = 2,
) -> None:
    """Run markets x agents x seeds on Dask's distributed scheduler; aggregate them (IQM, 95 % CI).

    Each cell is an ordinary run folder under <sweep>/cells/; running the same command again
    after an interruption keeps the finished cells and runs only the rest.
    """
    from rl_order_execution.sweeps.command import sweep_command

    code = sweep_command(spec, workers, scheduler, output_dir, retries, console, err_console)
    raise typer.Exit(code)


def main() -> None:
    torch.set_num_threads(1)  # tiny networks: one thread is never slower, and immune to a busy core
    app()
