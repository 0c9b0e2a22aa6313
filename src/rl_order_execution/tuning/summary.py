"""Where a study stands after `optimize`, and the lines printed about it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams
from rl_order_execution.tuning.best_params import BestParamsDecision
from rl_order_execution.tuning.study import DEFAULTS_ATTR, trial_value


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
    best_params: BestParamsDecision | None = None

    @property
    def done(self) -> int:
        return self.counts[TrialState.COMPLETE] + self.counts[TrialState.PRUNED]

    @property
    def finished(self) -> bool:
        """True when the study holds the requested number of complete or pruned trials."""
        return self.done >= self.n_trials

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else trial_value(self.best)


def _reference(settings: Settings) -> str:
    """What the best trial's savings compare with: the exact optimum's expected savings, or on
    replayed bars the calibrated optimum's savings on the same validation windows."""
    if settings.simulation.price_model == "book":
        from rl_order_execution.agents.book import advantage_bps, book_params

        return f"exact menu optimum: {advantage_bps(book_params(settings)):.4f} bps"
    p = MarketParams.from_settings(settings.simulation, settings.replay)
    if p.replay is not None:
        from rl_order_execution.agents.validation import Validator
        from rl_order_execution.strategies import CALIBRATED, WindowSchedule
        from rl_order_execution.strategies.replay import calibrated_trades

        validation = Validator(p, p.replay.validation.shocks())
        optimum = WindowSchedule(CALIBRATED, calibrated_trades(p, p.replay.validation))
        saved = (validation.twap_cost - validation.cost(optimum)) * p.bps
        return f"calibrated optimum on the same windows: {saved:.2f} bps"
    from rl_order_execution.evaluation import optimum_gap  # only the parent needs it

    return f"exact optimum: {optimum_gap(p) * p.bps:.2f} bps expected"


def print_summary(console: Console, result: OptimizeResult, settings: Settings) -> None:
    c = result.counts
    console.print(
        f"study [bold]{result.study_name}[/bold] ({result.storage}): {result.done} of "
        f"{result.n_trials} trials done ({c[TrialState.COMPLETE]} complete, "
        f"{c[TrialState.PRUNED]} pruned), {c[TrialState.FAIL]} failed",
        highlight=False,
    )
    if result.best is not None:
        console.print(
            f"best trial #{result.best.number}: {trial_value(result.best):.2f} bps risk-adjusted "
            f"cost savings vs TWAP on validation ({_reference(settings)}); "
            f"rl = {_changes(result.best)}",
            highlight=False,
        )
    if result.best_params is not None:
        console.print(result.best_params.reason, highlight=False)


def _changes(trial: FrozenTrial) -> str:
    changes = trial.user_attrs.get("rl") or {}
    return str(changes) if changes or DEFAULTS_ATTR not in trial.user_attrs else "current settings"


def print_failures(console: Console, trials: Sequence[FrozenTrial]) -> None:
    """The three most common reasons trials failed."""
    reasons = Counter(
        str(
            t.user_attrs.get("fail_reason", "no reason recorded (worker killed or interrupted)")
        ).splitlines()[0][:160]
        for t in trials
        if t.state == TrialState.FAIL
    )
    for reason, count in reasons.most_common(3):
        console.print(f"[yellow]failed[/yellow] x{count}: {reason}", highlight=False)
