"""Generate the settings table from the pydantic Settings models.

Walks `rl_order_execution.config.Settings` recursively, so every leaf setting is listed with its
environment variable (prefix and nested delimiter come from the model config: ``RL_`` and ``__``),
type, default (default factories included), declared constraints and description. The full table
fills docs/SETTINGS.md; scripts/readme_tables.py builds the README's compact one from `sections()`.

    python scripts/settings_table.py                      # print the full table to stdout
    python scripts/settings_table.py --update README.md   # rewrite every generated section of FILE
    python scripts/settings_table.py --check README.md    # exit 1 if one of them is stale

(`--update` and `--check` do what scripts/readme_tables.py does for that file.)

`settings-doc` lists the nested variable names but shows no default for `default_factory` fields
and none of the `gt`/`ge`/`le`/`min_length` constraints, so this small walker is used instead.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from rl_order_execution.config import Settings

GENERATED_NOTE = (
    "<!-- Generated from src/rl_order_execution/config/schema.py by `make docs` "
    "(scripts/settings_table.py); do not edit by hand. -->"
)
HEADER = (
    "| Environment variable | Type | Default | Allowed values | Description |",
    "| --- | --- | --- | --- | --- |",
)


@dataclass(frozen=True)
class Row:
    """One leaf setting."""

    env_name: str
    type_name: str
    default: str
    allowed: str
    description: str

    def markdown(self) -> str:
        cells = (
            f"`{self.env_name}`",
            self.type_name,
            self.default,
            self.allowed,
            self.description,
        )
        return "| " + " | ".join(_escape(cell) for cell in cells) + " |"


@dataclass(frozen=True)
class Section:
    """One nested model (a top-level key of config.yaml) and its leaf settings."""

    path: tuple[str, ...]
    doc: str
    rows: tuple[Row, ...]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ").strip() or "-"


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "str" if all(isinstance(a, str) for a in get_args(annotation)) else "literal"
    if origin in (list, tuple, set, frozenset):
        inner = ", ".join(_type_name(a) for a in get_args(annotation) if a is not Ellipsis)
        return f"list of {inner}" if inner else "list"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        if issubclass(annotation, Path):
            return "path"
        if issubclass(annotation, enum.Enum):
            return "str"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _format_value(value: Any) -> str:
    """A value as written in YAML / an environment variable (lists as JSON)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _format_value(value.value)
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "*required*"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "*required*"
    return f"`{_format_value(value)}`"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _constraint(meta: Any, is_text: bool) -> str:
    if isinstance(meta, at.Gt):
        return f"> {_format_value(meta.gt)}"
    if isinstance(meta, at.Ge):
        return f">= {_format_value(meta.ge)}"
    if isinstance(meta, at.Lt):
        return f"< {_format_value(meta.lt)}"
    if isinstance(meta, at.Le):
        return f"<= {_format_value(meta.le)}"
    if isinstance(meta, at.MultipleOf):
        return f"multiple of {_format_value(meta.multiple_of)}"
    unit = "character" if is_text else "item"
    if isinstance(meta, at.MinLen):
        if is_text and meta.min_length == 1:
            return "non-empty"
        return f"at least {_plural(meta.min_length, unit)}"
    if isinstance(meta, at.MaxLen):
        return f"at most {_plural(meta.max_length, unit)}"
    pattern = getattr(meta, "pattern", None)
    if pattern is not None:
        return f"matches `{pattern}`"
    return str(meta)


def _allowed(field: FieldInfo) -> str:
    annotation = field.annotation
    if _is_optional(annotation):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        annotation = inner[0] if len(inner) == 1 else annotation
    parts: list[str] = []
    if get_origin(annotation) is Literal:
        parts.append("one of " + ", ".join(f"`{_format_value(a)}`" for a in get_args(annotation)))
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = ", ".join(f"`{_format_value(m.value)}`" for m in annotation)
        parts.append(f"one of {values}")
    elif annotation is bool:
        parts.append("`true`, `false`")
    elif isinstance(annotation, type) and issubclass(annotation, Path):
        parts.append("any path")
    is_text = annotation is str
    constraints = [_constraint(meta, is_text) for meta in field.metadata]
    if constraints:
        parts.append(" and ".join(constraints))
    return "; ".join(parts)


def _env_prefix(model: type[BaseSettings]) -> tuple[str, str]:
    prefix = str(model.model_config.get("env_prefix") or "")
    delimiter = model.model_config.get("env_nested_delimiter")
    if not delimiter:
        raise ValueError(f"{model.__name__} has no env_nested_delimiter: nested names undefined")
    return prefix, str(delimiter)


def sections(model: type[BaseSettings] = Settings) -> Iterator[Section]:
    """Every nested model that holds leaf settings, depth first, in declaration order."""
    prefix, delimiter = _env_prefix(model)

    def walk(cls: type[BaseModel], path: tuple[str, ...]) -> Iterator[Section]:
        rows: list[Row] = []
        nested: list[tuple[type[BaseModel], tuple[str, ...]]] = []
        for name, field in cls.model_fields.items():
            sub = _model_class(field.annotation)
            if sub is not None:
                nested.append((sub, (*path, name)))
                continue
            rows.append(
                Row(
                    env_name=(prefix + delimiter.join((*path, name))).upper(),
                    type_name=_type_name(field.annotation),
                    default=_default(field),
                    allowed=_allowed(field),
                    description=field.description or "",
                )
            )
        if rows:
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            yield Section(path=path, doc=doc, rows=tuple(rows))
        for sub, sub_path in nested:
            yield from walk(sub, sub_path)

    yield from walk(model, ())


def _example(rows: Sequence[Row], kind: str) -> Row | None:
    return next((row for row in rows if row.type_name.startswith(kind)), None)


def render(model: type[BaseSettings] = Settings, heading_level: int = 3) -> str:
    """The markdown that goes between the README markers (without the markers)."""
    prefix, delimiter = _env_prefix(model)
    found = list(sections(model))
    rows = [row for section in found for row in section.rows]
    intro = (
        "Each setting can be given in `config/config.yaml` under its section "
        "or as the environment variable listed below "
        f"(`{prefix}<SECTION>{delimiter}<FIELD>`, case-insensitive)."
    )
    scalar = _example(rows, "float") or _example(rows, "int")
    if scalar is not None:
        intro += f" Example: `{scalar.env_name}={scalar.default.strip('`')}`."
    listed = _example(rows, "list")
    if listed is not None:
        intro += f" Lists are written as JSON: `{listed.env_name}='{listed.default.strip('`')}'`."
    intro += " Rules that span several fields are checked when the settings load."
    lines = [GENERATED_NOTE, "", intro]
    for section in found:
        title = ".".join(section.path) or "settings"
        heading = "#" * heading_level + f" `{title}`"
        if section.doc:
            heading += f": {section.doc}"
        lines += ["", heading, "", *HEADER, *(row.markdown() for row in section.rows)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--update", type=Path, metavar="FILE", help="rewrite the marked sections")
    group.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if a section is stale")
    args = parser.parse_args(argv)
    if args.update is None and args.check is None:
        sys.stdout.write(render())
        return 0
    if __package__ in (None, ""):  # run as a file: make `scripts` importable from the root
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from scripts import readme_tables

    if args.update is not None:
        return readme_tables.main([str(args.update)])
    return readme_tables.main(["--check", str(args.check)])


if __name__ == "__main__":
    sys.exit(main())
