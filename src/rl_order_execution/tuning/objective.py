"""One trial: claim a slot in the study, sample the agent's search space, train with pruning.

The value is the greedy agent's best risk-adjusted cost savings vs TWAP (bps) on the validation
shocks (their own seed, never the test set), maximised. A trial that raises (Ctrl-C included) is
recorded as FAIL with a `fail_reason`. The trial queued with the `defaults` attribute trains the
current settings unchanged and is never pruned: it is the score every other trial must beat.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from rl_order_execution.agents.registry import agent_spec, settings_kind
from rl_order_execution.agents.training import TrainHooks
from rl_order_execution.config import RLSettings, Settings
from rl_order_execution.market import MarketParams
from rl_order_execution.tuning.study import DEFAULTS_ATTR, DONE_STATES, KEY_ATTR

if TYPE_CHECKING:
    from rl_order_execution.agents.book import BookTrainResult
    from rl_order_execution.agents.training import TrainResult


class SurplusTrial(Exception):
    """Started when the study was already full (a race between workers): recorded FAIL, not run."""


def trial_settings(settings: Settings, rl_changes: dict[str, Any]) -> Settings:
    """Base settings plus the trial's rl changes and tuning budget; no progress, no TensorBoard."""
    opt = settings.optimization
    rl = settings.rl.model_dump()
    # an agent's own section (rl.dqn, rl.ppo, rl.sac) is updated, not replaced: untuned keys stay
    rl |= {k: rl[k] | v if isinstance(v, dict) else v for k, v in rl_changes.items()}
    rl |= {
        "episodes": opt.tuning_episodes,
        "eval_interval": opt.report_interval,
        "validation_episodes": opt.validation_episodes,
    }
    logging = settings.logging.model_copy(update={"progress": False, "tensorboard": False})
    return settings.model_copy(update={"rl": RLSettings.model_validate(rl), "logging": logging})


def settings_key(settings: Settings) -> str:
    """Identifies the rl settings a trial trains with (the device aside)."""
    data = settings.rl.model_dump_json(exclude={"device"})
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def defaults_key(settings: Settings) -> str:
    """The key of a trial that trains the current settings unchanged."""
    return settings_key(trial_settings(settings, {}))


@dataclass
class PruningHook:
    """The training's validation_hook: report each validation to Optuna, prune when it says so."""

    trial: optuna.trial.Trial
    interval: int
    last_step: int = 0
    prunable: bool = True

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
        if self.prunable and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after {episodes} episodes at {savings_bps:.2f} bps")


def claim_slot(trial: optuna.trial.Trial, n_trials: int) -> None:
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
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "KeyboardInterrupt: stopped by Ctrl-C")
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise

    def _run(self, trial: optuna.trial.Trial) -> float:
        opt = self.settings.optimization
        claim_slot(trial, opt.n_trials)
        trial.set_user_attr("worker", self.worker)
        spec = agent_spec(settings_kind(self.settings))
        defaults = DEFAULTS_ATTR in trial.user_attrs
        changes = {} if defaults else spec.suggest(trial, opt)
        trial.set_user_attr("rl", changes)
        tuned = trial_settings(self.settings, changes)
        trial.set_user_attr(KEY_ATTR, settings_key(tuned))
        hook = PruningHook(trial, opt.report_interval, prunable=not defaults)
        result = _train(tuned, hook)
        trial.set_user_attr("seconds", round(result.seconds, 3))
        if not math.isfinite(result.best_validation_bps):
            raise FloatingPointError("no finite validation result")
        return result.best_validation_bps


def _train(settings: Settings, hook: PruningHook) -> TrainResult | BookTrainResult:
    """Train the trial's agent on its market: the book market's own training (same search
    spaces, its learner reward), or the agent's registered training."""
    if settings.simulation.price_model == "book":
        from rl_order_execution.agents.book import book_params, train_book_agent

        return train_book_agent(settings, book_params(settings), validation_hook=hook)
    market = MarketParams.of(settings)
    return agent_spec(settings_kind(settings)).train(settings, market, TrainHooks(validation=hook))
