"""Loading the settings: YAML files, ``RL_*`` environment variables and CLI overrides.

Sources, highest precedence first: explicit overrides (CLI flags), ``RL_*`` environment variables
(nested with ``__``, e.g. ``RL_SIMULATION__RISK_AVERSION=0.5``), ``config/best_params.yaml``,
``config/config.yaml`` (or ``--config FILE``), then the defaults in `schema`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    YamlConfigSettingsSource,
)
from rich.logging import RichHandler

from rl_order_execution.config.environment import check_environment
from rl_order_execution.config.identity import settings_market
from rl_order_execution.config.schema import (
    DEFAULT_BEST_PARAMS_PATH,
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    LoggingSettings,
    Settings,
    move_flat_dqn,
)
from rl_order_execution.config.tuned import TunedChoice, choose_tuned, read_tuned
from rl_order_execution.errors import SettingsError

LOGGER_NAME = "rl_order_execution"


def _yaml_source(path: Path) -> YamlConfigSettingsSource:
    return YamlConfigSettingsSource(Settings, yaml_file=path)


def _check_yaml_file(path: Path) -> None:
    """Fail clearly on a malformed file instead of a YAML traceback deep in pydantic-settings."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SettingsError(f"{path}: not valid YAML{where}") from exc
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:  # binary garbage, or a file in another encoding
        raise SettingsError(
            f"{path}: not a YAML text file (byte {exc.start} is not UTF-8 text); fix or delete it"
        ) from exc
    if data is not None and not isinstance(data, dict):
        raise SettingsError(
            f"{path}: top level must be a mapping of sections, got {type(data).__name__}"
        )


class _Sources:
    """The ordered sources of one load, kept so `config show` can say where each value came from."""

    def __init__(
        self, overrides: Mapping[str, Any], config_path: Path | None, best_params_path: Path | None
    ) -> None:
        self.files: list[tuple[str, Path]] = []
        if config_path is not None and config_path.exists():
            self.files.append((f"config ({config_path})", config_path))
        for _, path in self.files:
            _check_yaml_file(path)
        self.overrides = dict(overrides)
        exists = best_params_path is not None and best_params_path.exists()
        self.tuned_path = best_params_path if exists else None
        self.tuned: TunedChoice | None = None  # chosen once the run's agent and market are known
        # source name -> the original project's flat rl names it used (rl.lr for rl.dqn.lr)
        self.legacy: dict[str, dict[str, None]] = {}

    @property
    def tuned_values(self) -> dict[str, Any]:
        return {} if self.tuned is None else self.tuned.values

    def ordered(self) -> tuple[PydanticBaseSettingsSource, ...]:
        return tuple(InitSettingsSource(Settings, values) for _, values in self.named_values())

    def named_values(self) -> list[tuple[str, dict[str, Any]]]:
        """Each source's values, highest precedence first, with the flat rl names moved."""
        named = [("cli", _nest(self.overrides)), ("env", _env_values())]
        if self.tuned_values:
            named.append((f"best-params ({self.tuned_path})", self.tuned_values))
        named += [(name, _yaml_source(path)()) for name, path in self.files]
        return [(name, self._moved(name, values)) for name, values in named]

    def _moved(self, name: str, values: dict[str, Any]) -> dict[str, Any]:
        rl = values.get("rl")
        if not isinstance(rl, Mapping):
            return values
        try:
            rl, flat = move_flat_dqn(rl, from_env=name == "env")
        except ValueError as exc:
            raise SettingsError(f"{name}: {exc}") from None
        self.legacy.setdefault(name, {}).update(dict.fromkeys(flat))
        return {**values, "rl": rl}

    def legacy_note(self) -> str | None:
        """One line: the flat rl names used, where each now lives, and where they were read."""
        names = list(dict.fromkeys(n for used in self.legacy.values() for n in used))
        if not names:
            return None
        where = " and ".join(name for name, used in self.legacy.items() if used)
        moves = ", ".join(f"rl.{name} is now rl.dqn.{name}" for name in names)
        return f"{moves}; read from {where}"

    def applied(self) -> list[tuple[str, str]]:
        """(name, kind) of the files that applied, the line about the tuned parameters and the
        one about the flat rl names used."""
        applied = [(name, "file") for name, _ in self.files]
        if self.tuned is not None:
            applied.insert(0, (self.tuned.line, "tuned" if self.tuned.used else "note"))
        note = self.legacy_note()
        return applied if note is None else [*applied, (note, "note")]


def _env_values() -> dict[str, Any]:
    return EnvSettingsSource(
        Settings, env_prefix=ENV_PREFIX, env_nested_delimiter="__", case_sensitive=False
    )()


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'rl.episodes': 5} -> {'rl': {'episodes': 5}}."""
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: `setting simulation.total_shares: must be > 0 (got -5)`."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "settings"
        msg = item["msg"].removeprefix("Value error, ")
        named = re.fullmatch(r"([a-z_]+(?:\.[a-z_]+)+): (.+)", msg) if not item["loc"] else None
        if named:  # a check across sections names its setting first
            loc, msg = named.groups()
        if item["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling)"
        got = item.get("input")
        shown = "" if isinstance(got, dict | type(None)) else f" (got {got!r})"
        lines.append(f"setting {loc}: {msg}{shown}")
    return "\n".join(lines)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    config_path: Path | None = DEFAULT_CONFIG_PATH,
    best_params_path: Path | None = DEFAULT_BEST_PARAMS_PATH,
    require_config: bool = False,
) -> tuple[Settings, list[tuple[str, str]]]:
    """Build the effective settings; returns them and the sources that applied (name, kind).

    `overrides` uses dotted keys (`{"rl.episodes": 100}`). Raises SettingsError on any user mistake.
    """
    if require_config and config_path is not None and not config_path.is_file():
        raise SettingsError(f"config file {config_path} does not exist")
    check_environment(os.environ)
    sources = _prepared(overrides or {}, config_path, best_params_path)
    return _build(sources), sources.applied()


def _build(sources: _Sources) -> Settings:
    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return sources.ordered()

    try:
        loaded = _Loaded()
        return Settings.model_validate(loaded.model_dump())
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from exc
    except (ValueError, TypeError) as exc:  # e.g. an env var that is not valid JSON for a list
        raise SettingsError(f"settings: {exc}") from exc


def _prepared(
    overrides: Mapping[str, Any], config_path: Path | None, best_params_path: Path | None
) -> _Sources:
    """The sources, with the tuned parameters of the run's own agent and market chosen: the
    settings without them say which agent and market the run has (they only hold rl settings)."""
    sources = _Sources(overrides, config_path, best_params_path)
    if sources.tuned_path is not None:
        tuned = read_tuned(sources.tuned_path)
        if tuned.entries:
            first = _build(sources)
            agent, market = first.rl.agent, settings_market(first)
            sources.tuned = choose_tuned(tuned, sources.tuned_path, agent, market)
    return sources


def value_sources(
    overrides: Mapping[str, Any] | None = None,
    config_path: Path | None = DEFAULT_CONFIG_PATH,
    best_params_path: Path | None = DEFAULT_BEST_PARAMS_PATH,
) -> dict[str, str]:
    """Map each dotted setting to the name of the source that set it ('default' if none)."""
    sources = _prepared(overrides or {}, config_path, best_params_path)
    known = set(flatten(Settings.model_construct()))
    origin: dict[str, str] = {}
    for name, values in reversed(sources.named_values()):  # lowest first, higher ones overwrite
        for path, _ in _leaves(values):
            while path not in known and "." in path:  # a key inside a mapping-valued setting
                path = path.rsplit(".", 1)[0]
            origin[path] = name
    return origin


def flatten(settings: BaseModel) -> dict[str, Any]:
    """Dotted setting -> JSON-friendly value, for tables and metrics.json. Sections nest; a
    setting whose value is a mapping (replay.columns) stays one entry."""
    return dict(_setting_leaves(settings, settings.model_dump(mode="json")))


def _setting_leaves(
    model: BaseModel, dumped: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value, path = getattr(model, name), f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _setting_leaves(value, dumped[name], f"{path}.")
        else:
            yield path, dumped[name]


def configure_logging(settings: LoggingSettings) -> None:
    """Apply `logging.level` to the toolkit's logger (one Rich console handler) and to Optuna's."""
    import optuna  # deferred: importing optuna is slow and most commands never tune

    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(settings.level)
    if not logger.handlers:
        logger.addHandler(RichHandler(show_path=False))
    # Optuna logs a line per trial at INFO, so it is only that chatty when we are at DEBUG.
    optuna_level = {
        "DEBUG": optuna.logging.DEBUG,
        "INFO": optuna.logging.WARNING,
        "WARNING": optuna.logging.WARNING,
        "ERROR": optuna.logging.ERROR,
    }[settings.level]
    optuna.logging.set_verbosity(optuna_level)
