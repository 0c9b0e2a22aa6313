"""The best trial's rl settings as a settings YAML that every later command reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from optuna.trial import FrozenTrial

from rl_order_execution.tuning.storage import display_url
from rl_order_execution.tuning.study import trial_value


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
    from rl_order_execution.reporting import write_text_atomic  # matplotlib: not in workers

    write_text_atomic(path, best_params_document(trial, study_name, storage))
