"""One entry point for training any of the three agents on the book market, by kind."""

from __future__ import annotations

from typing import Any

from rl_order_execution.agents.book.base import BookTrainResult, validator_for
from rl_order_execution.agents.book.validation import BookValidator
from rl_order_execution.agents.training import ProgressFn, ScalarLogger, ValidationHook
from rl_order_execution.config import Settings
from rl_order_execution.market.book import BookParams


def train_book_agent(
    settings: Settings,
    p: BookParams,
    *,
    logger: ScalarLogger | None = None,
    progress: ProgressFn | None = None,
    validation_hook: ValidationHook | None = None,
    validator: BookValidator | None = None,
) -> BookTrainResult:
    """Train settings.rl.agent on the book market p (hooks as for the simulated market's agents)."""
    from rl_order_execution.agents.book.dqn import train_ddqn
    from rl_order_execution.agents.book.sb3 import train_sb3_book

    validator = validator or validator_for(settings, p)
    kind = settings.rl.agent
    hooks: dict[str, Any] = {
        "logger": logger,
        "progress": progress,
        "validation_hook": validation_hook,
    }
    if kind == "ddqn":
        return train_ddqn(settings, p, validator, **hooks)
    return train_sb3_book(settings, p, validator, **hooks)
