"""`rl-exec`: commands parse options, build the Settings once, call one library function."""

from __future__ import annotations

import errno
import functools
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

app = typer.Typer(
    name="rl-exec",
    help="Optimal trade execution with deep RL: train, evaluate, benchmark, tune.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")
_Model = TypeVar("_Model", bound=BaseModel)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML config file (default: config/config.yaml if present)."),
]
EpisodesOpt = Annotated[int | None, typer.Option("--episodes", help="Training episodes.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Master training seed.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output-dir", help="The run folder itself (default: output/runs/<name>)."),
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
        except SettingsError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
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
    return settings, applied


def _run_dir(settings: Settings, output_dir: Path | None, run_name: str | None) -> Path:
    from rl_order_execution.experiment import default_run_dir

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
        int,
        typer.Option("--seeds", min=1, max=100, help="Independent trainings (seeds) to compare."),
    ] = 1,
) -> None:
    """Train the agent, evaluate it against TWAP and the exact optimum on shared shocks."""
    from rl_order_execution.experiment import run_experiment

    settings, _ = build_settings(
        config,
        no_best_params,
        episodes=episodes,
        seed=seed,
        device=device,
        eval_episodes=eval_episodes,
    )
    run_experiment(settings, _run_dir(settings, output_dir, run_name), console, seeds=seeds)


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
) -> None:
    """Train the agent and save its checkpoint (model.pt) and TensorBoard logs."""
    from rl_order_execution.experiment import train_only

    settings, _ = build_settings(
        config, no_best_params, episodes=episodes, seed=seed, device=device
    )
    train_only(settings, _run_dir(settings, output_dir, run_name), console)


@app.command()
@user_errors
def evaluate(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", help="A model.pt written by run/train.")
    ],
    config: ConfigOpt = None,
    output_dir: OutputOpt = None,
    run_name: RunNameOpt = None,
    device: DeviceOpt = None,
    eval_episodes: EvalEpisodesOpt = None,
) -> None:
    """Evaluate a saved agent against TWAP on the market it was trained on, on shared shocks.

    The test episodes are the checkpoint's unless --config or --eval-episodes say otherwise.
    """
    from rl_order_execution.experiment import evaluate_checkpoint, load_checkpoint

    loaded = load_checkpoint(checkpoint, device or "cpu")
    evaluation = loaded.settings.evaluation
    if config is not None:
        evaluation = build_settings(config, True)[0].evaluation
    if eval_episodes is not None:
        evaluation = _validated(evaluation, episodes=eval_episodes)
    settings = loaded.settings.model_copy(update={"evaluation": evaluation})
    out = output_dir or (
        checkpoint.parent if run_name is None else _run_dir(settings, None, run_name)
    )
    evaluate_checkpoint(loaded, checkpoint, settings, out, console)


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
) -> None:
    """Tune the agent with Optuna (TPE, median pruning); write config/best_params.yaml."""
    from rl_order_execution.tuning import optimize as run_optimize

    settings, _ = build_settings(config, no_best_params)
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


def main() -> None:
    torch.set_num_threads(1)  # tiny networks: one thread is never slower, and immune to a busy core
    app()
