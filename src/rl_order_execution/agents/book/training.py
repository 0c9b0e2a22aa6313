"""One entry point for training any of the three agents on the book market, by kind, and one for
rebuilding a trained one from its saved policy (`rl-exec evaluate` on a book run)."""

from __future__ import annotations

from typing import Any

from rl_order_execution.agents.book.base import BookAgent, BookTrainResult, validator_for
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


def load_book_agent(settings: Settings, p: BookParams, state: dict[str, Any]) -> BookAgent:
    """The agent of kind settings.rl.agent with the network its settings describe, its policy's
    tensors replaced by `state` (what `BookAgent.policy_state` returned); on the CPU."""
    from rl_order_execution.agents.base import resolve_device
    from rl_order_execution.agents.book.dqn import BookDQN
    from rl_order_execution.agents.book.sb3 import BookSB3Agent, BookSB3Env, build_ppo, build_sac

    rl = settings.rl.model_copy(update={"device": "cpu"})
    kind = rl.agent
    agent: BookAgent
    if kind == "ddqn":
        agent = BookDQN(p, rl, 0)
    else:
        continuous = kind == "sac"
        env = BookSB3Env(p, 1, 0, continuous, rl.gamma, 1.0)
        build = build_sac if continuous else build_ppo
        model = build(settings, env, 0, resolve_device("cpu"))
        agent = BookSB3Agent(kind, model.policy, p, continuous)
    agent.load_policy_state(state)
    return agent
