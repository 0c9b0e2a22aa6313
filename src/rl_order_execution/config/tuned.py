"""`config/best_params.yaml`: the rl settings `rl-exec optimize` found, one entry per agent kind
and market (`tuned.<agent>.<market hash>`). A run takes only the entry of its own agent and
market, never its agent from the file, and says in one line which entry it used or why none.

An old-format file (settings sections at the top, as optimize wrote before entries existed) is
applied as before only to the agent it was tuned for (its `rl.agent`, or ddqn where it names
none) and, when its header names its study, only on that study's market; it never sets the agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rl_order_execution.errors import SettingsError

TUNED = "tuned"
LEGACY_AGENT = "ddqn"  # an old file that names no agent was tuned for the Double DQN
# the header line an old file carries: "# study: <name>  storage: ..."; a study name ends in
# "-<market hash>" unless the study was named verbatim
_STUDY_LINE = re.compile(r"^# study: (\S+)", re.MULTILINE)
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8})$")


@dataclass(frozen=True)
class TunedEntry:
    """The tuned rl settings of one agent kind on one market (None: an old file's unknown one)."""

    agent: str
    market: str | None
    rl: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)  # study, trial, scores, time written

    def label(self) -> str:
        return f"{self.agent} on market {self.market or '(not recorded)'}"


@dataclass(frozen=True)
class TunedFile:
    """What best_params.yaml holds: the entries, or one old-format document."""

    entries: tuple[TunedEntry, ...] = ()
    legacy: dict[str, Any] | None = None  # the old file's settings, applied as a whole


@dataclass(frozen=True)
class TunedChoice:
    """The settings a run takes from the file (none: {}) and the one line that says so."""

    values: dict[str, Any]
    line: str
    used: bool


def _read_yaml(path: Path) -> tuple[Any, str]:
    try:
        text = path.read_text()
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SettingsError(f"{path}: not valid YAML{where}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{path}: not a YAML text file (byte {exc.start} is not UTF-8 text); fix or delete it"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read ({exc.strerror})") from None


def legacy_market(text: str) -> str | None:
    """The market hash at the end of the study name an old file's header records, if any."""
    study = _STUDY_LINE.search(text)
    found = _HASH_SUFFIX.search(study.group(1)) if study else None
    return found.group(1) if found else None


def _entries(path: Path, tuned: Any) -> tuple[TunedEntry, ...]:
    shape = f"{path}: {TUNED} must map agent kinds to market hashes to entries with an rl mapping"
    if not isinstance(tuned, Mapping):
        raise SettingsError(shape)
    entries = []
    for agent, markets in tuned.items():
        if not isinstance(markets, Mapping):
            raise SettingsError(shape)
        for market, entry in markets.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("rl"), Mapping):
                raise SettingsError(f"{shape} ({TUNED}.{agent}.{market} has none)")
            rl = {k: v for k, v in entry["rl"].items() if k != "agent"}  # the key says the agent
            info = {k: v for k, v in entry.items() if k != "rl"}
            entries.append(TunedEntry(str(agent), str(market), rl, info))
    return tuple(entries)


def read_tuned(path: Path) -> TunedFile:
    """Read best_params.yaml (either format); an empty file holds nothing."""
    data, text = _read_yaml(path)
    if data is None:
        return TunedFile()
    if not isinstance(data, Mapping):
        raise SettingsError(
            f"{path}: top level must be a mapping of sections, got {type(data).__name__}"
        )
    if TUNED not in data:
        return TunedFile(legacy=dict(data), entries=_legacy_entry(data, text))
    others = sorted(str(k) for k in data if k != TUNED)
    if others:
        raise SettingsError(
            f"{path}: holds {TUNED}: entries and also {', '.join(others)}; put settings in the "
            "config file, and leave this file to rl-exec optimize"
        )
    return TunedFile(_entries(path, data[TUNED]))


def _legacy_entry(data: Mapping[str, Any], text: str) -> tuple[TunedEntry, ...]:
    rl = data.get("rl")
    rl = dict(rl) if isinstance(rl, Mapping) else {}
    agent = str(rl.pop("agent", LEGACY_AGENT))
    return (TunedEntry(agent, legacy_market(text), rl, {"converted": "from an old-format file"}),)


def choose_tuned(tuned: TunedFile, path: Path, agent: str, market: str) -> TunedChoice | None:
    """The entry for this agent and market, or the line naming why none applies; None when the
    file holds nothing."""
    if not tuned.entries:
        return None
    this = f"this run is {agent} on market {market}"
    if tuned.legacy is not None:
        (entry,) = tuned.entries
        if entry.agent == agent and entry.market in (None, market):
            values = {k: v for k, v in tuned.legacy.items() if k != "rl"}
            values["rl"] = entry.rl  # never the agent: it is this run's already
            unknown = "" if entry.market else ", which does not record its market"
            return TunedChoice(
                values,
                f"tuned parameters for {agent} on market {market} used ({path}, an old-format "
                f"file{unknown}; rl-exec optimize rewrites it per agent and market)",
                True,
            )
        return TunedChoice({}, f"{path}: tuned for {entry.label()}; {this}; not used", False)
    for entry in tuned.entries:
        if entry.agent == agent and entry.market == market:
            line = f"tuned parameters for {agent} on market {market} used ({path})"
            return TunedChoice({"rl": entry.rl}, line, True)
    others = ", ".join(entry.label() for entry in tuned.entries)
    return TunedChoice({}, f"{path}: tuned for {others}; {this}; not used", False)
