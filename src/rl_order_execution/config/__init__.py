"""Validated settings: one object, built once at the CLI boundary and passed down explicitly.

`schema` holds the section models and their defaults; `loader` builds a `Settings` from CLI
overrides, ``RL_*`` environment variables and YAML files, and explains where each value came from.
"""

from rl_order_execution.config.loader import (
    configure_logging,
    flatten,
    format_validation_error,
    load_settings,
    value_sources,
)
from rl_order_execution.config.schema import (
    DEFAULT_BEST_PARAMS_PATH,
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    DQNSettings,
    EvaluationSettings,
    LoggingSettings,
    OptimizationSettings,
    PPOSettings,
    ReplaySettings,
    RLSettings,
    SACSettings,
    Settings,
    SimulationSettings,
    saved_settings,
)
from rl_order_execution.errors import SettingsError

__all__ = [
    "DEFAULT_BEST_PARAMS_PATH",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "DQNSettings",
    "EvaluationSettings",
    "LoggingSettings",
    "OptimizationSettings",
    "PPOSettings",
    "RLSettings",
    "ReplaySettings",
    "SACSettings",
    "Settings",
    "SettingsError",
    "SimulationSettings",
    "configure_logging",
    "flatten",
    "format_validation_error",
    "load_settings",
    "saved_settings",
    "value_sources",
]
