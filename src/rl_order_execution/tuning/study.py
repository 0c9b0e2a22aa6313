"""One study per market: its name (with the market's hash), seeded TPE per worker and session,
median pruning, the current settings scored as its first trial; and what it holds."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from rl_order_execution.config import OptimizationSettings, Settings, SettingsError
from rl_order_execution.config.identity import market_hash as market_hash
from rl_order_execution.config.identity import settings_market
from rl_order_execution.tuning.storage import first_use_lock, rdb_storage, retrying, storage_errors

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
DEFAULTS_ATTR = "defaults"  # user attribute of the trial that scores the current settings
KEY_ATTR = "rl_key"  # user attribute: the key of the rl settings a trial trained with


def resolve_study_name(settings: Settings) -> str:
    """The study name, with the market hash appended unless the settings ask for it verbatim."""
    opt = settings.optimization
    if not opt.study_name_includes_market_hash:
        return opt.study_name
    agent = "" if settings.rl.agent == "ddqn" else f"-{settings.rl.agent}"  # own search space
    return f"{opt.study_name}{agent}-{settings_market(settings)}"


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


def scores_settings(trial: FrozenTrial, key: str) -> bool:
    """True when the trial trained (or, waiting, will train) with the settings of this key."""
    return key in (trial.user_attrs.get(KEY_ATTR), trial.user_attrs.get(DEFAULTS_ATTR))


def enqueue_defaults(study: optuna.Study, n_trials: int, key: str) -> None:
    """Queue a trial of the current settings (key) unless one has run, runs or waits, or the
    study is already full. Waiting trials run first, so it is the session's first trial."""
    trials = study.get_trials(deepcopy=False)
    if sum(t.state in DONE_STATES for t in trials) >= n_trials:
        return
    if any(t.state != TrialState.FAIL and scores_settings(t, key) for t in trials):
        return
    study.enqueue_trial({}, user_attrs={DEFAULTS_ATTR: key})


def open_study(
    opt: OptimizationSettings, study_name: str, worker: int = 0, defaults_key: str | None = None
) -> optuna.Study:
    """Create or load the study (maximise) with a seeded TPE sampler and the pruner; with
    defaults_key, make sure the current settings get scored. Processes starting together on a
    fresh database take turns (first_use_lock) and retry a collision."""

    def first_use() -> optuna.Study:
        with first_use_lock(opt.storage):
            study = optuna.create_study(
                storage=rdb_storage(opt),
                study_name=study_name,
                direction="maximize",
                pruner=make_pruner(opt),
                load_if_exists=True,
            )
            if defaults_key is not None and study.direction == optuna.study.StudyDirection.MAXIMIZE:
                enqueue_defaults(study, opt.n_trials, defaults_key)
            return study

    study = storage_errors(opt, lambda: retrying(first_use))
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SettingsError(f"study {study_name} exists but minimises: choose another study name")
    seed = sampler_seed(opt.seed, worker, len(study.get_trials(deepcopy=False)))
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


def trial_counts(study: optuna.Study) -> Counter[TrialState]:
    """How many trials of the study are in each state."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def trial_value(trial: FrozenTrial) -> float:
    """The trial's value; -inf when it has none."""
    return trial.value if trial.value is not None else -math.inf


def best_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the highest value, if any."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return max(complete, key=trial_value, default=None)
