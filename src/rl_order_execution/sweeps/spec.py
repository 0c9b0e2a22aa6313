"""A sweep's YAML spec: markets x agents x seeds, with optional settings for every cell."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rl_order_execution.errors import UserError
from rl_order_execution.sweeps.cell import known_agents

MARKETS_DIR = Path("benchmarks/markets")  # presets, named by their stem
SWEEPS_DIR = Path("output/sweeps")  # a sweep's folder is <this>/<name> unless --output-dir
AXIS_SETTINGS = {"rl.agent": "agents", "simulation.seed": "seeds"}  # set by the axes only
KEYS = ("name", "markets", "agents", "seeds", "settings")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SweepError(UserError):
    """A user mistake in a sweep (spec, folder, scheduler): one line, exit code 2, no cell run."""


class SweepSpecError(SweepError):
    """A spec that cannot be run as written."""


@dataclass(frozen=True)
class Market:
    """A market of the sweep: its name (the file's stem) and the config file that describes it."""

    name: str
    path: Path


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated spec: every cell is (market, agent, seed) with `settings` on top."""

    name: str
    markets: tuple[Market, ...]
    agents: tuple[str, ...]
    seeds: tuple[int, ...]
    settings: dict[str, Any] = field(default_factory=dict)  # dotted keys, sorted

    def recorded(self) -> dict[str, Any]:
        """What the sweep folder records in spec.json, and what a restart must match."""
        return {
            "markets": [m.name for m in self.markets],
            "agents": list(self.agents),
            "seeds": list(self.seeds),
            "settings": self.settings,
        }

    def market_files(self) -> dict[str, str]:
        return {m.name: str(m.path) for m in self.markets}


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a spec file; SweepSpecError names the first problem in one line."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SweepSpecError(f"sweep spec {path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SweepSpecError(f"sweep spec {path}: not valid YAML{where}") from None
    except UnicodeDecodeError:
        raise SweepSpecError(f"sweep spec {path}: not a YAML text file") from None
    try:
        return parse_spec(data, default_name=path.stem)
    except SweepSpecError as exc:
        raise SweepSpecError(f"sweep spec {path}: {exc}") from None


def parse_spec(data: object, default_name: str) -> SweepSpec:
    """The spec from its YAML mapping (errors without the file name)."""
    if not isinstance(data, dict):
        raise SweepSpecError("the top level must be a mapping (name, markets, agents, seeds)")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise SweepSpecError(f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SweepSpecError(f"name {name!r} must be a folder name (letters, digits, . _ -)")
    return SweepSpec(
        name=name,
        markets=_markets(_axis(data, "markets")),
        agents=_agents(_axis(data, "agents")),
        seeds=_seeds(_axis(data, "seeds")),
        settings=_settings(data.get("settings")),
    )


def _axis(data: Mapping[str, Any], key: str) -> list[Any]:
    values = data.get(key)
    if values is None:
        raise SweepSpecError(f"{key}: missing (a list of at least one)")
    if not isinstance(values, list):
        values = [values]
    if not values:
        raise SweepSpecError(f"{key}: empty (a list of at least one)")
    return values


def _duplicate(values: list[Any]) -> Any | None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def resolve_market(entry: object) -> Market:
    """A preset of benchmarks/markets by its stem, or a config file (a path, from this folder)."""
    if not isinstance(entry, str) or not entry:
        raise SweepSpecError(f"markets: {entry!r} is not a market name or a config file")
    if "/" in entry or entry.endswith((".yaml", ".yml")):
        path = Path(entry)
        if not path.is_file():
            raise SweepSpecError(f"markets: config file {entry} does not exist")
        return Market(path.stem, path)
    path = MARKETS_DIR / f"{entry}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MARKETS_DIR.glob("*.yaml"))) or "none found"
        raise SweepSpecError(
            f"markets: unknown market {entry!r} (not a config file, nor a preset in "
            f"{MARKETS_DIR}: {known})"
        )
    return Market(entry, path)


def _markets(entries: list[Any]) -> tuple[Market, ...]:
    markets = [resolve_market(entry) for entry in entries]
    twice = _duplicate([m.name for m in markets])
    if twice is not None:
        raise SweepSpecError(f"markets: two markets are named {twice!r} (a market is its stem)")
    return tuple(markets)


def _agents(entries: list[Any]) -> tuple[str, ...]:
    known = known_agents()
    for agent in entries:
        if agent not in known:
            raise SweepSpecError(f"agents: unknown agent {agent!r} (known: {', '.join(known)})")
    twice = _duplicate(entries)
    if twice is not None:
        raise SweepSpecError(f"agents: {twice!r} is listed twice (duplicate cells)")
    return tuple(entries)


def _seeds(entries: list[Any]) -> tuple[int, ...]:
    for seed in entries:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SweepSpecError(f"seeds: {seed!r} is not a seed (an integer >= 0)")
    twice = _duplicate(entries)
    if twice is not None:
        raise SweepSpecError(f"seeds: {twice} is listed twice (duplicate cells)")
    return tuple(entries)


def _flat(tree: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """{'rl': {'episodes': 5}} and {'rl.episodes': 5} both -> {'rl.episodes': 5}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if not isinstance(key, str) or not key:
            raise SweepSpecError(f"settings: {key!r} is not a setting name")
        path = f"{prefix}{key}"
        flat |= _flat(value, f"{path}.") if isinstance(value, Mapping) else {path: value}
    return flat


def _settings(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SweepSpecError("settings: must be a mapping of dotted settings to values")
    flat = _flat(value)
    for key, axis in AXIS_SETTINGS.items():
        if key in flat:
            raise SweepSpecError(f"settings: {key} is set by the {axis} axis, not in settings")
    return dict(sorted(flat.items()))
