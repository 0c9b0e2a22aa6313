"""Every kind of agent the toolkit knows, by the name checkpoints and settings use.

Adding an agent: a package beside `dqn/` with its own AgentSpec, one line in AGENTS. The market,
the evaluation and the reporting never change for it.
"""

from __future__ import annotations

from rl_order_execution.agents import dqn
from rl_order_execution.agents.base import AgentSpec
from rl_order_execution.agents.sb3 import ppo, sac
from rl_order_execution.config import Settings

AGENTS: dict[str, AgentSpec] = {spec.kind: spec for spec in (dqn.SPEC, ppo.SPEC, sac.SPEC)}


class UnknownAgentKind(LookupError):
    """A kind of agent that is not in AGENTS."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"agent kind {kind!r} is not known (known kinds: {', '.join(AGENTS)})")


def agent_spec(kind: str) -> AgentSpec:
    """The spec of one kind of agent."""
    try:
        return AGENTS[kind]
    except (KeyError, TypeError):
        raise UnknownAgentKind(kind) from None


def settings_kind(settings: Settings) -> str:
    """The kind of agent the settings train (rl.agent)."""
    return settings.rl.agent
