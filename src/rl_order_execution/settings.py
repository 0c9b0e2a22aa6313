"""Temporary alias of `rl_order_execution.config` until every import is switched; do not extend."""

from rl_order_execution.config import (
    DEFAULT_BEST_PARAMS_PATH,
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    EvaluationSettings,
    LoggingSettings,
    OptimizationSettings,
    RLSettings,
    Settings,
    SettingsError,
    SimulationSettings,
    configure_logging,
    flatten,
    format_validation_error,
    load_settings,
    value_sources,
)

__all__ = [
    "DEFAULT_BEST_PARAMS_PATH",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "EvaluationSettings",
    "LoggingSettings",
    "OptimizationSettings",
    "RLSettings",
    "Settings",
    "SettingsError",
    "SimulationSettings",
    "configure_logging",
    "flatten",
    "format_validation_error",
    "load_settings",
    "value_sources",
]
