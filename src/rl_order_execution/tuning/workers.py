"""Workers: each runs trials until the study holds n_trials finished ones; K of them run as
spawned processes sharing the storage. A trial whose worker died is failed and retried: by its
stale heartbeat, or, when the worker died before its first heartbeat, by its start time."""

from __future__ import annotations

import copy
import multiprocessing
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import optuna
import sqlalchemy
import torch
from optuna.storages._rdb.models import TrialHeartbeatModel
from optuna.trial import FrozenTrial, TrialState

from rl_order_execution.config import Settings
from rl_order_execution.tuning.objective import Objective, SurplusTrial
from rl_order_execution.tuning.study import DONE_STATES, open_study, trial_counts

POLL_SECONDS = 0.5
STOP_WAIT_SECONDS = 10  # after Ctrl-C, time for workers to record why their trial stopped
StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


def _with_heartbeat(storage: optuna.storages.RDBStorage, trial_ids: list[int]) -> set[int]:
    """The trials among trial_ids that have recorded a heartbeat."""
    query = sqlalchemy.select(TrialHeartbeatModel.trial_id).where(
        TrialHeartbeatModel.trial_id.in_(trial_ids)
    )
    with storage.engine.connect() as connection:
        return {int(row[0]) for row in connection.execute(query)}


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Fail, and hand to the retry callback, every running trial whose worker cannot be alive.

    Optuna's fail_stale_trials covers heartbeats older than the grace period; a worker killed
    after its trial was created but before the first heartbeat leaves a running trial with no
    heartbeat at all, which it never fails: here such a trial counts as dead once it started
    longer ago than the grace period. Returns the numbers of the trials failed here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    storage = study._storage  # Optuna wraps the RDBStorage in a cache: ask the database itself
    database = getattr(storage, "_backend", storage)
    if not isinstance(database, optuna.storages.RDBStorage):
        return []
    grace = database.grace_period if database.get_heartbeat_interval() else None
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running or not grace:
        return []
    alive = _with_heartbeat(database, [t._trial_id for t in running])
    cutoff = datetime.now() - timedelta(seconds=grace)  # Optuna stores local naive times
    failed = []
    for trial in running:
        started = trial.datetime_start
        if trial._trial_id in alive or started is None or started >= cutoff:
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker failed it first
    retry = database.get_heartbeat_stale_trial_callback()
    for trial in failed:
        if retry is not None:
            retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return [t.number for t in failed]


def _wait_for_running(study: optuna.Study) -> None:
    """Running trials may fill the study: wait, failing (so retrying) those whose worker died."""
    fail_dead_trials(study)
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
        fail_dead_trials(study)
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
    try:
        study = open_study(job.settings.optimization, job.study_name, job.worker)
        if not run_worker(study, Objective(job.settings, job.worker)):
            raise SystemExit(1)  # gave up after max_consecutive_failures
    except KeyboardInterrupt:  # Ctrl-C reaches every worker: the trial recorded why; no traceback
        raise SystemExit(130) from None


def _stop(processes: Sequence[multiprocessing.process.BaseProcess], wait: float = 0.0) -> None:
    deadline = time.monotonic() + wait
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
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
    except KeyboardInterrupt:
        _stop(processes, wait=STOP_WAIT_SECONDS)  # each worker records its trial's fail_reason
        raise
    except BaseException:
        _stop(processes)
        raise
    _stop(processes)
    return [p.exitcode if p.exitcode is not None else -1 for p in processes]
