"""The best trial's rl settings as the entry of its agent and market in best_params.yaml (the
other entries kept), written only when that trial beats the current settings on the validation
set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from optuna.trial import FrozenTrial, TrialState

from rl_order_execution.config import Settings
from rl_order_execution.config.identity import settings_market
from rl_order_execution.config.schema import move_flat_dqn
from rl_order_execution.config.tuned import TUNED, read_tuned
from rl_order_execution.files import write_text_atomic
from rl_order_execution.tuning.storage import display_url
from rl_order_execution.tuning.study import KEY_ATTR, best_trial, trial_value


@dataclass(frozen=True)
class BestParamsDecision:
    """Whether the best trial is written, and the sentence that says why (or why not)."""

    write: bool
    reason: str
    baseline: FrozenTrial | None = None  # the trial that scored the current settings


def decide_best_params(
    trials: Sequence[FrozenTrial], current_key: str, path: Path | None, entry: str = ""
) -> BestParamsDecision:
    """Write only a trial that beats the current settings (the trial of current_key) on the
    validation set; a rerun that found nothing better leaves the file as it is. `entry` names
    the agent and market whose entry is written."""
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
    written = f"wrote {target} (tuned parameters for {entry})" if entry else f"wrote {target}"
    return BestParamsDecision(True, f"{written}: {why}", baseline)


HEADER = (
    "# Tuned hyperparameters written by `rl-exec optimize`: tuned.<agent>.<market hash>.rl, one\n"
    "# entry per agent kind and market. A run uses only the entry of its own agent and market\n"
    "# (CLI flags and RL_* variables still win; --no-best-params ignores the file).\n"
)


def tuned_entry(
    trial: FrozenTrial, study_name: str, storage: str, baseline: FrozenTrial | None = None
) -> dict[str, Any]:
    """The best trial's rl changes (never the agent: the entry's key says it), and their origin.
    A trial of an older study recorded the Double DQN's settings by their flat names: moved."""
    changes = trial.user_attrs.get("rl") or {}
    rl = {k: v for k, v in move_flat_dqn(changes)[0].items() if k != "agent"}
    entry: dict[str, Any] = {
        "rl": rl,
        "study": study_name,
        "storage": display_url(storage),
        "trial": trial.number,
        "validation_bps": round(trial_value(trial), 4),
    }
    if baseline is not None:
        entry["current_settings_bps"] = round(trial_value(baseline), 4)
    entry["written"] = datetime.now(UTC).isoformat(timespec="seconds")
    return entry


def _kept_entries(path: Path) -> tuple[dict[str, dict[str, Any]], str]:
    """The entries already in the file, and a note when an old-format file is converted."""
    if not path.exists():
        return {}, ""
    current = read_tuned(path)
    kept: dict[str, dict[str, Any]] = {}
    for entry in current.entries:
        if entry.market is None:  # an old file that never recorded its market cannot be kept
            return {}, f" (replaced the old-format {path}, which recorded no market)"
        rl, _ = move_flat_dqn(entry.rl)  # rewritten with rl.dqn's names
        kept.setdefault(entry.agent, {})[entry.market] = {"rl": rl, **entry.info}
    if current.legacy is not None and set(current.legacy) - {"rl"}:
        sections = ", ".join(sorted(set(current.legacy) - {"rl"}))
        return kept, f" (the old-format file's {sections} left out: settings go in the config file)"
    return kept, ""


def best_params_document(entries: dict[str, dict[str, Any]]) -> str:
    """best_params.yaml: the header, then the entries by agent and market."""
    body = yaml.safe_dump({TUNED: entries}, sort_keys=True, default_flow_style=None)
    return HEADER + body


def write_best_params(
    path: Path,
    trial: FrozenTrial,
    study_name: str,
    storage: str,
    settings: Settings,
    baseline: FrozenTrial | None = None,
) -> str:
    """Write the trial's entry for this agent and market atomically, keeping every other
    entry; returns a note on an old-format file converted ("" when none)."""
    entries, note = _kept_entries(path)
    market = settings_market(settings)
    entries.setdefault(settings.rl.agent, {})[market] = tuned_entry(
        trial, study_name, storage, baseline
    )
    write_text_atomic(path, best_params_document(entries))
    return note
