"""Workers: each runs trials until the study holds n_trials finished ones; K of them run as
spawned processes sharing the storage. A trial whose worker died is failed by the heartbeat and
retried."""

from __future__ import annotations

import multiprocessing
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from rl_order_execution.config import Settings
from rl_order_execution.tuning.objective import Objective, SurplusTrial
from rl_order_execution.tuning.study import DONE_STATES, open_study, trial_counts

POLL_SECONDS = 0.5
StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


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
