"""`RL_*` environment variables checked before they are read: each must name a setting
(`RL_<SECTION>__<SETTING>`, nested with `__`), and a list or mapping must be JSON. pydantic-settings
would silently ignore a misspelt name and report a malformed list without naming the variable."""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Iterator, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from rl_order_execution.config.schema import DQN_FIELDS, ENV_PREFIX, Settings
from rl_order_execution.errors import SettingsError

DELIMITER = "__"
_CONTAINERS = (list, dict, set, tuple, frozenset)


def _model(annotation: Any) -> type[BaseModel] | None:
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def _container(annotation: Any) -> type | None:
    """list, dict, ... when the setting's values are read as JSON (also inside `X | None`)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        found = [c for arg in get_args(annotation) if (c := _container(arg)) is not None]
        return found[0] if found else None
    kind = origin if origin is not None else annotation
    return kind if isinstance(kind, type) and issubclass(kind, _CONTAINERS) else None


def _names(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every section and setting, as paths of field names."""
    for name, info in model.model_fields.items():
        yield (*path, name)
        inner = _model(info.annotation)
        if inner is not None:
            yield from _names(inner, (*path, name))


def env_name(path: tuple[str, ...]) -> str:
    """('simulation', 'volatility') -> RL_SIMULATION__VOLATILITY."""
    return ENV_PREFIX + DELIMITER.join(path).upper()


def _unknown(key: str) -> SettingsError:
    """The error for a variable that names no setting, naming the closest valid one."""
    valid = {env_name(path): ".".join(path) for path in _names(Settings)}
    close = difflib.get_close_matches(key.upper(), list(valid), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]} (the setting {valid[close[0]]})?"
    else:
        sections = ", ".join(Settings.model_fields)
        hint = f"RL_ variables are {ENV_PREFIX}<SECTION>__<SETTING>, sections: {sections}"
    return SettingsError(f"environment variable {key} names no setting; {hint}")


def _example(kind: type, default: Any) -> str:
    """A valid value to show: the setting's default, or a section's first setting."""
    if isinstance(default, BaseModel):
        name, value = next(iter(default.model_dump(mode="json").items()))
        return json.dumps({name: value})
    if isinstance(default, list | tuple) and default:
        return json.dumps(list(default))
    return '{"name": 1}' if kind is dict else "[1, 2]"


def _check_json(key: str, value: str, path: tuple[str, ...], kind: type, default: Any) -> None:
    try:
        json.loads(value)
    except ValueError:
        shape = "JSON object" if kind is dict else "JSON list"
        raise SettingsError(
            f"environment variable {key}: {value!r} is not a {shape} (the setting "
            f"{'.'.join(path)}); write it as JSON, e.g. {key}='{_example(kind, default)}'"
        ) from None


def check_variable(key: str, value: str) -> None:
    """Refuse an RL_ variable that names no setting, or whose list or mapping is not JSON."""
    parts = key[len(ENV_PREFIX) :].lower().split(DELIMITER)
    if len(parts) == 2 and parts[0] == "rl" and parts[1] in DQN_FIELDS:  # the old flat name
        parts = ["rl", "dqn", parts[1]]
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            raise _unknown(key)
        path = tuple(parts[: i + 1])
        inner = _model(info.annotation)
        if inner is not None:
            if i == len(parts) - 1:  # a whole section as one JSON object
                _check_json(key, value, path, dict, inner())
            model = inner
            continue
        kind = _container(info.annotation)
        if i < len(parts) - 1 and kind is not dict:  # only a mapping holds named keys below
            raise _unknown(key)
        if i == len(parts) - 1 and kind is not None:
            _check_json(key, value, path, kind, info.get_default(call_default_factory=True))
        return


def check_environment(environ: Mapping[str, str]) -> None:
    """Check every RL_ variable (case-insensitive, as pydantic-settings reads them)."""
    for key in sorted(environ):
        if key.upper().startswith(ENV_PREFIX):
            check_variable(key, environ[key])
