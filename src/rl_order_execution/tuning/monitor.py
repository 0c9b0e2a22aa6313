"""The study's progress as one Rich line: trials done of n, pruned, failed, running, best."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from rl_order_execution.tuning.study import DONE_STATES, best_trial, trial_value


def status_text(trials: Sequence[FrozenTrial]) -> str:
    counts = Counter(t.state for t in trials)
    best = best_trial(trials)
    shown = "n/a" if best is None else f"{trial_value(best):.2f} bps (#{best.number})"
    return (
        f"pruned {counts[TrialState.PRUNED]}  failed {counts[TrialState.FAIL]}  "
        f"running {counts[TrialState.RUNNING]}  best {shown}"
    )


def progress_bar(console: Console, enabled: bool) -> Progress:
    columns = (
        TextColumn("[bold]optimizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials  {task.fields[status]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, disable=not enabled)


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
        self.progress.update(self.task, completed=done, status=status_text(trials))


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial log lines off while the progress line shows the study."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
