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


@app.callback()
def _wide_without_terminal() -> None:
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
    for name, _ in applied:
        console.print(f"[dim]using {name}[/dim]", highlight=False)
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
            "--seeds", min=1, max=100, help="Independent trainings (seeds) to compare [default: 1]."
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
        flags |= {"--output-dir": output_dir, "--run-name": run_name}
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
        flags |= {"--config": config}
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
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", help="A model.pt written by run/train.")
    ],
    config: ConfigOpt = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Folder for this evaluation (default: evaluations/<date-time> in the "
            "checkpoint's folder; the run's own files are never touched).",
        ),
    ] = None,
    run_name: Annotated[
        str | None,
        typer.Option("--run-name", help="Write the evaluation to output/runs/<name> instead."),
    ] = None,
    device: DeviceOpt = None,
    eval_episodes: EvalEpisodesOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Evaluate a saved agent against TWAP on the market it was trained on, on shared shocks.

    The test episodes are the checkpoint's unless --config or --eval-episodes say otherwise.
    Results go to a folder of their own; the run that wrote the checkpoint is never rewritten.
    """
    from rl_order_execution.experiment import evaluate_checkpoint, load_checkpoint
    from rl_order_execution.runs.folders import evaluation_dir, run_folder

    _note_ignored_env(config is not None)
    loaded = load_checkpoint(checkpoint, device or "cpu")
    evaluation = loaded.settings.evaluation
    if config is not None:
        evaluation = build_settings(config, True)[0].evaluation
    if eval_episodes is not None:
        evaluation = _validated(evaluation, episodes=eval_episodes)
    settings = loaded.settings.model_copy(update={"evaluation": evaluation})
    out = output_dir or (
        evaluation_dir(checkpoint) if run_name is None else _run_dir(settings, None, run_name)
    )
    with run_folder(out, device or "cpu", overwrite, keep=checkpoint):
        evaluate_checkpoint(loaded, checkpoint, settings, out, console)


def _note_ignored_env(config_given: bool) -> None:
    """evaluate runs the checkpoint's market and agent: say so when RL_* variables ask otherwise."""
    sections = ["SIMULATION", "RL"] + ([] if config_given else ["EVALUATION"])
    prefixes = tuple(f"RL_{section}__" for section in sections)
    ignored = sorted(key for key in os.environ if key.upper().startswith(prefixes))
    if ignored:
        console.print(
            f"note: {', '.join(ignored)} not used: evaluate runs the market and agent settings "
            "saved in the checkpoint"
            + ("" if config_given else " (test settings: from --config or --eval-episodes)"),
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
) -> None:
    """Self-check: every reference strategy's closed form vs Monte Carlo (exit 1 on mismatch)."""
    from rl_order_execution.experiment import run_benchmark

    settings, _ = build_settings(config, no_best_params, eval_episodes=eval_episodes)
    out = output_dir or _run_dir(settings, None, run_name or "benchmark")
    if not run_benchmark(settings, out, console):
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
) -> None:
    """Tune the agent with Optuna (TPE, median pruning); write config/best_params.yaml."""
    from rl_order_execution.tuning import optimize as run_optimize

    settings, _ = build_settings(config, no_best_params, agent=agent)
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
    from rl_order_execution.experiment import market_warnings, print_warnings
    from rl_order_execution.market import MarketParams

    p = MarketParams.from_settings(settings.simulation, settings.replay)
    print_warnings(console, market_warnings(settings, p))


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


def main() -> None:
    torch.set_num_threads(1)  # tiny networks: one thread is never slower, and immune to a busy core
    app()
