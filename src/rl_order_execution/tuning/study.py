"""One study per market: its name (with the market's hash), seeded TPE per worker and session,
median pruning; and what it holds."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from rl_order_execution.config import (
    OptimizationSettings,
    Settings,
    SettingsError,
    SimulationSettings,
)
from rl_order_execution.tuning.storage import make_storage

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


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
