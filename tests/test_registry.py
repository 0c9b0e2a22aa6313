"""The agent registry and the settings name the same kinds of agent."""

from __future__ import annotations

from typing import get_args

from rl_order_execution.agents.registry import AGENTS
from rl_order_execution.config.schema import AgentKind


def test_the_registrys_agent_kinds_equal_the_settings_agent_kinds() -> None:
    assert list(AGENTS) == list(get_args(AgentKind))
    assert all(spec.kind == kind for kind, spec in AGENTS.items())
