"""The best trial's rl settings as a settings YAML that every later command reads, written only
when that trial beats the current settings on the validation set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from optuna.trial import FrozenTrial, TrialState

from rl_order_execution.tuning.storage import display_url
from rl_order_execution.tuning.study import KEY_ATTR, best_trial, trial_value


@dataclass(frozen=True)
class BestParamsDecision:
    """Whether the best trial is written, and the sentence that says why (or why not)."""

    write: bool
    reason: str
    baseline: FrozenTrial | None = None  # the trial that scored the current settings


def decide_best_params(
    trials: Sequence[FrozenTrial], current_key: str, path: Path | None
) -> BestParamsDecision:
    """Write only a trial that beats the current settings (the trial of current_key) on the
    validation set; a rerun that found nothing better leaves the file as it is."""
    target = "config/best_params.yaml" if path is None else str(path)
    best = best_trial(trials)
    scored = [t for t in trials if t.state == TrialState.COMPLETE]
    baseline = best_trial([t for t in scored if t.user_attrs.get(KEY_ATTR) == current_key])
    if best is None:
        return BestParamsDecision(False, f"{target} not written: no trial completed")
    if baseline is None:
        return BestParamsDecision(
            False,
            f"{target} not written: the current settings were not scored in this study (it was "
            "already full when they changed); raise --n-trials to score them",
        )
    current = f"{trial_value(baseline):.2f} bps for the current settings (trial #{baseline.number})"
    if best.user_attrs.get(KEY_ATTR) == current_key or trial_value(best) <= trial_value(baseline):
        return BestParamsDecision(
            False, f"{target} not written: no trial beats the {current}", baseline
        )
    gain = trial_value(best) - trial_value(baseline)
    why = (
        f"trial #{best.number} scores {trial_value(best):.2f} bps on validation vs the {current}, "
        f"{gain:+.2f} bps"
    )
    if path is None:
        return BestParamsDecision(False, f"{target} not written (--no-write-best-params): {why}")
    return BestParamsDecision(True, f"wrote {target}: {why}", baseline)


def best_params_document(trial: FrozenTrial, study_name: str, storage: str) -> str:
    """The best trial's rl settings as a settings YAML, with a comment header saying where from."""
    written = datetime.now(UTC).isoformat(timespec="seconds")
    header = (
        "# Best hyperparameters found by `rl-exec optimize`; read by every command after the\n"
        "# config file (CLI flags and RL_* variables still win; --no-best-params ignores it).\n"
        f"# study: {study_name}  storage: {display_url(storage)}\n"
        f"# trial: {trial.number}  value: {trial_value(trial):.4f} bps risk-adjusted cost "
        "savings vs TWAP (validation)\n"
        f"# written: {written}\n"
    )
    body = yaml.safe_dump({"rl": trial.user_attrs["rl"]}, sort_keys=True, default_flow_style=None)
    return header + body


def write_best_params(path: Path, trial: FrozenTrial, study_name: str, storage: str) -> None:
    """Write best_params_document atomically (temporary file, then rename)."""
    from rl_order_execution.files import write_text_atomic

    write_text_atomic(path, best_params_document(trial, study_name, storage))
