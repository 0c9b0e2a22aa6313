"""Hyperparameter search with Optuna: seeded TPE, median pruning, a shared RDB storage, K workers.

The objective is the greedy agent's best risk-adjusted cost savings vs TWAP (bps) on the validation
shocks (their own seed, never the test set), maximised. Trials that raise are recorded as FAIL with
a `fail_reason`; a trial whose worker died is failed by the heartbeat and retried.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rl_order_execution.market import MarketParams
from rl_order_execution.settings import (
    DEFAULT_BEST_PARAMS_PATH,
    OptimizationSettings,
    RLSettings,
    Settings,
    SettingsError,
    SimulationSettings,
    format_validation_error,
)
from rl_order_execution.training import train

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = 0.5
SQLITE_TIMEOUT_S = 60
StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


class SurplusTrial(Exception):
    """Started when the study was already full (a race between workers): recorded FAIL, not run."""


# --- study identity and storage -------------------------------------------------------------


def market_hash(simulation: SimulationSettings) -> str:
    """Eight hex digits identifying the market; the training seed is not part of it."""
    data = json.dumps(simulation.model_dump(mode="json", exclude={"seed"}), sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:8]


def resolve_study_name(settings: Settings) -> str:
    """The study name, with the market hash appended unless the settings ask for it verbatim."""
    opt = settings.optimization
    if not opt.study_name_includes_market_hash:
        return opt.study_name
    return f"{opt.study_name}-{market_hash(settings.simulation)}"


def display_url(url: str) -> str:
    """The storage URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}  # workers wait for locks
    return {"pool_pre_ping": True}


def _in_memory(url: str) -> bool:
    try:
        return url.startswith("sqlite") and make_url(url).database in (None, "", ":memory:")
    except ArgumentError:
        return False


def _create_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_storage(opt: OptimizationSettings) -> optuna.storages.RDBStorage:
    """The RDB storage with heartbeats; a trial whose worker died is failed and retried."""
    try:
        _create_sqlite_folder(opt.storage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                opt.storage,
                engine_kwargs=_engine_kwargs(opt.storage),
                heartbeat_interval=opt.heartbeat_interval,
                grace_period=opt.grace_period,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=opt.max_retry
                ),
            )
    except ImportError as exc:
        missing = getattr(exc.__cause__ or exc, "name", None) or "its driver"
        raise SettingsError(
            f"storage {display_url(opt.storage)}: database driver {missing} is not installed "
            "(PostgreSQL: pip install psycopg2-binary and use postgresql+psycopg2://...)"
        ) from exc
    except (ArgumentError, SQLAlchemyError) as exc:
        raise SettingsError(f"storage {display_url(opt.storage)}: cannot open ({exc})") from exc


def make_pruner(opt: OptimizationSettings) -> optuna.pruners.BasePruner:
    """Median pruning over validation checkpoints (steps are training episodes)."""
    if not opt.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=opt.pruner_startup_trials, n_warmup_steps=opt.pruner_warmup_episodes
    )


def sampler_seed(seed: int, worker: int, trials_before: int) -> int:
    """A TPE seed per worker and per session, so a resumed study does not replay its first draws."""
    return int(np.random.SeedSequence([seed, worker, trials_before]).generate_state(1)[0])


def open_study(opt: OptimizationSettings, study_name: str, worker: int = 0) -> optuna.Study:
    """Create or load the study (maximise) with a seeded TPE sampler and the pruner."""
    study = optuna.create_study(
        storage=make_storage(opt),
        study_name=study_name,
        direction="maximize",
        pruner=make_pruner(opt),
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SettingsError(f"study {study_name} exists but minimises: choose another study name")
    seed = sampler_seed(opt.seed, worker, len(study.get_trials(deepcopy=False)))
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


# --- one trial ------------------------------------------------------------------------------


def suggest(trial: optuna.trial.BaseTrial, opt: OptimizationSettings) -> dict[str, Any]:
    """Sample one configuration; returns the rl settings it changes."""
    width = trial.suggest_categorical("hidden_width", opt.hidden_widths)
    return {
        "lr": trial.suggest_float("lr", opt.lr_min, opt.lr_max, log=True),
        "batch_size": trial.suggest_categorical("batch_size", opt.batch_sizes),
        "gamma": trial.suggest_float("gamma", opt.gamma_min, opt.gamma_max),
        "hidden_sizes": [width] * opt.hidden_layers,
        "target_update": trial.suggest_int(
            "target_update", opt.target_update_min, opt.target_update_max, log=True
        ),
        "epsilon_decay": trial.suggest_float(
            "epsilon_decay", opt.epsilon_decay_min, opt.epsilon_decay_max
        ),
        "updates_per_step": trial.suggest_float(
            "updates_per_step", opt.updates_per_step_min, opt.updates_per_step_max, log=True
        ),
        "n_envs": trial.suggest_categorical("n_envs", opt.n_envs_choices),
    }


def trial_settings(settings: Settings, rl_changes: dict[str, Any]) -> Settings:
    """Base settings plus the trial's rl changes and tuning budget; no progress, no TensorBoard."""
    opt = settings.optimization
    rl = settings.rl.model_dump() | rl_changes
    rl |= {
        "episodes": opt.tuning_episodes,
        "eval_interval": opt.report_interval,
        "validation_episodes": opt.validation_episodes,
    }
    logging = settings.logging.model_copy(update={"progress": False, "tensorboard": False})
    return settings.model_copy(update={"rl": RLSettings.model_validate(rl), "logging": logging})


@dataclass
class PruningHook:
    """train()'s validation_hook: report each validation to Optuna, prune when it says so."""

    trial: optuna.trial.Trial
    interval: int
    last_step: int = 0

    def __call__(self, episodes: int, savings_bps: float) -> None:
        if not math.isfinite(savings_bps):
            raise FloatingPointError(f"validation savings not finite after {episodes} episodes")
        # Round down to the nominal checkpoint: trials with other n_envs validate at other episode
        # counts, and the median pruner only compares values reported at the same step.
        step = episodes // self.interval * self.interval
        if step <= self.last_step:
            return
        self.last_step = step
        self.trial.report(savings_bps, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after {episodes} episodes at {savings_bps:.2f} bps")


def _claim_slot(trial: optuna.trial.Trial, n_trials: int) -> None:
    """Refuse to run when finished trials plus those started before this one fill the study."""
    trials = trial.study.get_trials(deepcopy=False)
    done = sum(t.state in DONE_STATES for t in trials)
    live = (TrialState.RUNNING, TrialState.WAITING)
    ahead = sum(t.state in live and t.number < trial.number for t in trials)
    if done + ahead >= n_trials:
        raise SurplusTrial(f"the study already had {n_trials} trials finished or running")


@dataclass
class Objective:
    """Train with the sampled settings; the value is the best validation savings vs TWAP (bps)."""

    settings: Settings
    worker: int = 0

    def __call__(self, trial: optuna.trial.Trial) -> float:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise

    def _run(self, trial: optuna.trial.Trial) -> float:
        opt = self.settings.optimization
        _claim_slot(trial, opt.n_trials)
        trial.set_user_attr("worker", self.worker)
        changes = suggest(trial, opt)
        trial.set_user_attr("rl", changes)
        hook = PruningHook(trial, opt.report_interval)
        result = train(trial_settings(self.settings, changes), validation_hook=hook)
        trial.set_user_attr("seconds", round(result.seconds, 3))
        if not math.isfinite(result.best_validation_bps):
            raise FloatingPointError("no finite validation result")
        return result.best_validation_bps


# --- workers --------------------------------------------------------------------------------


def trial_counts(study: optuna.Study) -> Counter[TrialState]:
    """How many trials of the study are in each state."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def _wait_for_running(study: optuna.Study) -> None:
    """Running trials may fill the study: wait, failing (so retrying) those whose worker died."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    time.sleep(POLL_SECONDS)


def _counts_as_failure(trial: FrozenTrial) -> bool:
    reason = str(trial.user_attrs.get("fail_reason", ""))
    return trial.state == TrialState.FAIL and not reason.startswith(SurplusTrial.__name__)


def run_worker(
    study: optuna.Study, objective: Objective, callbacks: Sequence[StudyCallback] = ()
) -> bool:
    """Run trials until the study holds n_trials complete or pruned ones; False if it gave up."""
    opt = objective.settings.optimization
    enough = optuna.study.MaxTrialsCallback(opt.n_trials, states=DONE_STATES)
    last: list[FrozenTrial] = []
    failures = 0
    while failures < opt.max_consecutive_failures:
        counts = trial_counts(study)
        done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if done >= opt.n_trials:
            return True
        if done + counts[TrialState.RUNNING] >= opt.n_trials:
            _wait_for_running(study)
            continue
        study.optimize(
            objective,
            n_trials=1,
            catch=(Exception,),
            callbacks=[enough, lambda _, t: last.append(t), *callbacks],
        )
        failures = failures + 1 if last and _counts_as_failure(last[-1]) else 0
    return False


@dataclass(frozen=True)
class WorkerJob:
    """What a spawned worker process needs (picklable)."""

    settings: Settings
    study_name: str
    worker: int


def worker_main(job: WorkerJob) -> None:
    """Entry point of one worker process: one torch thread, trials until the study is full."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(job.settings.optimization, job.study_name, job.worker)
    if not run_worker(study, Objective(job.settings, job.worker)):
        raise SystemExit(1)  # gave up after max_consecutive_failures


def _stop(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()  # its trial goes stale and is retried by the next run
        process.join()


def run_processes(
    settings: Settings, study_name: str, workers: int, poll: Callable[[], None]
) -> list[int]:
    """Spawn the workers, call poll() while they run; returns their exit codes."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=worker_main,
            args=(WorkerJob(settings, study_name, i),),
            name=f"optuna-worker-{i}",
        )
        for i in range(workers)
    ]
    try:
        for process in processes:
            process.start()
        while any(p.is_alive() for p in processes):
            poll()
            time.sleep(POLL_SECONDS)
    except BaseException:
        _stop(processes)
        raise
    _stop(processes)
    return [p.exitcode if p.exitcode is not None else -1 for p in processes]


# --- progress, results, best parameters -------------------------------------------------------


def _value(trial: FrozenTrial) -> float:
    return trial.value if trial.value is not None else -math.inf


def best_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the highest value, if any."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return max(complete, key=_value, default=None)


def _status_text(trials: Sequence[FrozenTrial]) -> str:
    counts = Counter(t.state for t in trials)
    best = best_trial(trials)
    shown = "n/a" if best is None else f"{_value(best):.2f} bps (#{best.number})"
    return (
        f"pruned {counts[TrialState.PRUNED]}  failed {counts[TrialState.FAIL]}  "
        f"running {counts[TrialState.RUNNING]}  best {shown}"
    )


@dataclass
class StudyMonitor:
    """One Rich progress line: trials done of n, pruned, failed, running, best value so far."""

    progress: Progress
    study: optuna.Study
    n_trials: int
    task: TaskID = field(init=False)

    def __post_init__(self) -> None:
        self.task = self.progress.add_task("optimize", total=self.n_trials, status="")
        self.refresh()

    def refresh(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        done = sum(t.state in DONE_STATES for t in trials)
        self.progress.update(self.task, completed=done, status=_status_text(trials))


def _progress(console: Console, enabled: bool) -> Progress:
    columns = (
        TextColumn("[bold]optimizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials  {task.fields[status]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, disable=not enabled)


def best_params_document(trial: FrozenTrial, study_name: str, storage: str) -> str:
    """The best trial's rl settings as a settings YAML, with a comment header saying where from."""
    written = datetime.now(UTC).isoformat(timespec="seconds")
    header = (
        "# Best hyperparameters found by `rl-exec optimize`; read by every command after the\n"
        "# config file (CLI flags and RL_* variables still win; --no-best-params ignores it).\n"
        f"# study: {study_name}  storage: {display_url(storage)}\n"
        f"# trial: {trial.number}  value: {_value(trial):.4f} bps risk-adjusted cost savings vs "
        "TWAP (validation)\n"
        f"# written: {written}\n"
    )
    body = yaml.safe_dump({"rl": trial.user_attrs["rl"]}, sort_keys=True, default_flow_style=None)
    return header + body


def write_best_params(path: Path, trial: FrozenTrial, study_name: str, storage: str) -> None:
    """Write best_params_document atomically (temporary file, then rename)."""
    from rl_order_execution.reporting import write_text_atomic  # matplotlib: not in workers

    write_text_atomic(path, best_params_document(trial, study_name, storage))


@dataclass
class OptimizeResult:
    """Where the study stands after `optimize`."""

    study_name: str
    storage: str
    n_trials: int
    counts: Counter[TrialState]
    best: FrozenTrial | None
    best_params_path: Path | None
    worker_exit_codes: list[int]

    @property
    def done(self) -> int:
        return self.counts[TrialState.COMPLETE] + self.counts[TrialState.PRUNED]

    @property
    def finished(self) -> bool:
        """True when the study holds the requested number of complete or pruned trials."""
        return self.done >= self.n_trials

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else _value(self.best)


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
    if max(opt.batch_sizes) > settings.rl.memory_size:
        raise SettingsError(
            f"optimization.batch_sizes: {max(opt.batch_sizes)} exceeds rl.memory_size "
            f"({settings.rl.memory_size})"
        )
    if workers > 1 and _in_memory(opt.storage):
        raise SettingsError("an in-memory SQLite storage cannot be shared by several workers")


def _gap_bps(settings: Settings) -> float:
    from rl_order_execution.benchmarking import optimum_gap  # only the parent needs it

    p = MarketParams.from_settings(settings.simulation)
    return optimum_gap(p) * p.bps


def _print_summary(console: Console, result: OptimizeResult, settings: Settings) -> None:
    c = result.counts
    console.print(
        f"study [bold]{result.study_name}[/bold] ({result.storage}): {result.done} of "
        f"{result.n_trials} trials done ({c[TrialState.COMPLETE]} complete, "
        f"{c[TrialState.PRUNED]} pruned), {c[TrialState.FAIL]} failed",
        highlight=False,
    )
    if result.best is not None:
        gap = _gap_bps(settings)
        console.print(
            f"best trial #{result.best.number}: {_value(result.best):.2f} bps risk-adjusted cost "
            f"savings vs TWAP on validation (exact optimum: {gap:.2f} bps expected); "
            f"rl = {result.best.user_attrs['rl']}",
            highlight=False,
        )
    if result.best_params_path is not None:
        console.print(f"wrote {result.best_params_path}", highlight=False)


def _print_failures(console: Console, trials: Sequence[FrozenTrial]) -> None:
    reasons = Counter(
        str(
            t.user_attrs.get("fail_reason", "no reason recorded (worker killed or interrupted)")
        ).splitlines()[0][:160]
        for t in trials
        if t.state == TrialState.FAIL
    )
    for reason, count in reasons.most_common(3):
        console.print(f"[yellow]failed[/yellow] x{count}: {reason}", highlight=False)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _run(settings: Settings, study: optuna.Study, workers: int, console: Console) -> list[int]:
    """Run the workers (here when there is one) under the progress display."""
    opt = settings.optimization
    with _progress(console, settings.logging.progress) as bar:
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
    """`rl-exec optimize`: run the study to n_trials done trials; write the best parameters.

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
    with _quiet_optuna():
        study = open_study(opt, name)  # created here, so workers never race to create it
        console.print(
            f"optimizing study [bold]{name}[/bold] in {display_url(opt.storage)} "
            f"with {workers} worker(s)",
            highlight=False,
        )
        codes = _run(settings, study, workers, console)
        trials = study.get_trials(deepcopy=False)
    best = best_trial(trials)
    written = best_params_path if best is not None else None
    if best is not None and best_params_path is not None:
        write_best_params(best_params_path, best, name, opt.storage)
    counts = Counter(t.state for t in trials)
    result = OptimizeResult(
        name, display_url(opt.storage), opt.n_trials, counts, best, written, codes
    )
    _print_failures(console, trials)
    _print_summary(console, result, settings)
    return result
