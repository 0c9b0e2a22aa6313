"""Hyperparameter search with Optuna: seeded TPE, median pruning, a shared RDB storage, K workers.

`storage` (where studies live), `study` (name, sampler, pruner), `objective` (one trial: the
agent's search space, trained with pruning), `workers` (trials in processes), `monitor` (the
progress line), `best_params` (the YAML written), `summary` (what is printed at the end).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch
from pydantic import ValidationError
from rich.console import Console

from rl_order_execution.config import (
    DEFAULT_BEST_PARAMS_PATH,
    OptimizationSettings,
    Settings,
    SettingsError,
    format_validation_error,
)
from rl_order_execution.config.identity import settings_market
from rl_order_execution.tuning.best_params import (
    BestParamsDecision,
    best_params_document,
    decide_best_params,
    write_best_params,
)
from rl_order_execution.tuning.monitor import StudyMonitor, progress_bar, quiet_optuna
from rl_order_execution.tuning.objective import (
    Objective,
    PruningHook,
    SurplusTrial,
    defaults_key,
    trial_settings,
)
from rl_order_execution.tuning.storage import display_url, in_memory, make_storage
from rl_order_execution.tuning.study import (
    best_trial,
    market_hash,
    open_study,
    resolve_study_name,
    trial_counts,
)
from rl_order_execution.tuning.summary import OptimizeResult, print_failures, print_summary
from rl_order_execution.tuning.workers import (
    WorkerJob,
    fail_dead_trials,
    run_processes,
    run_worker,
    worker_main,
)

__all__ = [
    "BestParamsDecision",
    "Objective",
    "OptimizeResult",
    "PruningHook",
    "SurplusTrial",
    "WorkerJob",
    "best_params_document",
    "best_trial",
    "check_search_space",
    "decide_best_params",
    "defaults_key",
    "fail_dead_trials",
    "make_storage",
    "market_hash",
    "open_study",
    "optimize",
    "resolve_study_name",
    "trial_counts",
    "trial_settings",
    "with_options",
    "worker_main",
]


def with_options(settings: Settings, **options: Any) -> Settings:
    """The settings with the command-line choices (None = keep) applied and validated."""
    data = settings.optimization.model_dump() | {k: v for k, v in options.items() if v is not None}
    try:
        opt = OptimizationSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(
            format_validation_error(exc).replace("setting ", "setting optimization.")
        ) from None
    return settings.model_copy(update={"optimization": opt})


def check_search_space(settings: Settings, workers: int) -> None:
    """Fail before any trial on choices no trial could run with."""
    opt = settings.optimization
    if workers < 1:
        raise SettingsError(f"workers must be >= 1 (got {workers})")
    if max(opt.batch_sizes) > settings.rl.dqn.memory_size:
        raise SettingsError(
            f"optimization.batch_sizes: {max(opt.batch_sizes)} exceeds rl.dqn.memory_size "
            f"({settings.rl.dqn.memory_size})"
        )
    if workers > 1 and in_memory(opt.storage):
        raise SettingsError("an in-memory SQLite storage cannot be shared by several workers")


def _run(settings: Settings, study: optuna.Study, workers: int, console: Console) -> list[int]:
    """Run the workers (here when there is one) under the progress display."""
    opt = settings.optimization
    with progress_bar(console, settings.logging.progress) as bar:
        monitor = StudyMonitor(bar, study, opt.n_trials)
        if workers > 1:
            codes = run_processes(settings, study.study_name, workers, monitor.refresh)
        else:
            torch.set_num_threads(1)
            finished = run_worker(study, Objective(settings), [lambda _s, _t: monitor.refresh()])
            codes = [0 if finished else 1]
        monitor.refresh()
    return codes


def optimize(
    settings: Settings,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    n_trials: int | None = None,
    best_params_path: Path | None = DEFAULT_BEST_PARAMS_PATH,
    console: Console | None = None,
    study_name_includes_market_hash: bool | None = None,
) -> OptimizeResult:
    """`rl-exec optimize`: run the study to n_trials done trials, the current settings scored
    first; write the best parameters only when a trial beats the current settings.

    None keeps the value from settings.optimization; best_params_path=None writes nothing.
    """
    console = console or Console()
    settings = with_options(
        settings,
        storage=storage,
        study_name=study_name,
        n_trials=n_trials,
        study_name_includes_market_hash=study_name_includes_market_hash,
    )
    check_search_space(settings, workers)
    opt, name = settings.optimization, resolve_study_name(settings)
    current = defaults_key(settings)
    with quiet_optuna():
        study = open_study(opt, name, defaults_key=current)  # workers then load, never create
        console.print(
            f"optimizing study [bold]{name}[/bold] in {display_url(opt.storage)} "
            f"with {workers} worker(s)",
            highlight=False,
        )
        try:
            codes = _run(settings, study, workers, console)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                "stopped by Ctrl-C; the running trial is recorded as failed (fail_reason), and "
                "the same command resumes the study"
            ) from None
        trials = study.get_trials(deepcopy=False)
    best = best_trial(trials)
    entry = f"{settings.rl.agent} on market {settings_market(settings)}"
    decision = decide_best_params(trials, current, best_params_path, entry)
    if decision.write and best_params_path is not None and best is not None:
        baseline = decision.baseline
        note = write_best_params(best_params_path, best, name, opt.storage, settings, baseline)
        decision = replace(decision, reason=decision.reason + note)
    counts = Counter(t.state for t in trials)
    written = best_params_path if decision.write else None
    result = OptimizeResult(
        name, display_url(opt.storage), opt.n_trials, counts, best, written, codes, decision
    )
    print_failures(console, trials)
    print_summary(console, result, settings)
    return result
