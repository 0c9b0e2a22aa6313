"""Checkpoints: the policy of any kind of agent, the settings it was trained with, and how.

Format 2 records the agent's kind; format 1 (before there were kinds) holds a Double DQN. Loading
reads tensors and plain data only (weights_only) and lets the kind's spec rebuild the agent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import gymnasium
import numpy as np
import torch

from rl_order_execution.agents.base import Agent, AgentSpec, resolve_device
from rl_order_execution.agents.book.base import BookAgent
from rl_order_execution.agents.registry import UnknownAgentKind, agent_spec
from rl_order_execution.agents.training import TrainResult
from rl_order_execution.config import Settings, saved_settings
from rl_order_execution.errors import CheckpointError
from rl_order_execution.files import atomic_write

FORMAT = 2
READABLE_FORMATS = (1, 2)
FORMAT_1_KIND = "ddqn"  # format 1 predates kinds: every such file holds a Double DQN


class _Kinded(Protocol):
    kind: str


AgentT = TypeVar("AgentT", bound=_Kinded)


@dataclass
class Loaded(Generic[AgentT]):
    """An agent rebuilt from a checkpoint, with the settings it was trained with."""

    agent: AgentT
    settings: Settings
    payload: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.agent.kind


class LoadedAgent(Loaded[Agent]):
    """A simulated or replayed market's agent (it acts with a trading speed)."""


class LoadedBookAgent(Loaded[BookAgent]):
    """A book market's agent (it acts with the order menu or SAC's continuous order)."""


def training_record(result: TrainResult) -> dict[str, Any]:
    """How the training went, as the checkpoint and metrics.json write it."""
    return {
        "episodes": result.episodes,
        "updates": result.updates,
        "seconds": result.seconds,
        "best_validation_bps": result.best_validation_bps,
    }


def policy_payload(
    kind: str, weights: dict[str, Any], settings: Settings, training: dict[str, Any]
) -> dict[str, Any]:
    """Everything needed to rebuild and audit an agent of any market kind."""
    return {
        "format": FORMAT,
        "kind": kind,
        "weights": weights,
        "settings": settings.model_dump(mode="json"),
        "seed": settings.simulation.seed,
        "versions": {
            "torch": str(torch.__version__),
            "numpy": str(np.__version__),
            "gymnasium": str(gymnasium.__version__),
        },
        "training": training,
    }


def checkpoint_payload(result: TrainResult, settings: Settings) -> dict[str, Any]:
    """Everything needed to rebuild and audit the agent."""
    return policy_payload(
        result.agent.kind, result.agent.policy_state(), settings, training_record(result)
    )


def write_payload(path: Path, payload: dict[str, Any]) -> None:
    """torch.save, atomically."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda h: h.write(buffer.getvalue()))


def save_checkpoint(path: Path, result: TrainResult, settings: Settings) -> None:
    write_payload(path, checkpoint_payload(result, settings))


def save_book_checkpoint(
    path: Path, agent: BookAgent, settings: Settings, training: dict[str, Any]
) -> None:
    """A book-market agent's checkpoint: the same format, its policy's tensors as weights."""
    write_payload(path, policy_payload(agent.kind, agent.policy_state(), settings, training))


def _unreadable(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: not a readable rl-exec checkpoint ({what})")


def _missing(path: Path) -> CheckpointError:
    """A path that is no checkpoint file: say what it is instead."""
    if path.is_dir():
        inside = path / "model.pt"
        seeds = sorted(path.glob("seed-*/model.pt"))
        hint = (
            f"its checkpoint is {inside}"
            if inside.is_file()
            else f"its checkpoints are {path}/seed-*/model.pt, e.g. {seeds[0]}"
            if seeds
            else "give the model.pt file"
        )
        return CheckpointError(f"checkpoint {path} is a folder, not a checkpoint file; {hint}")
    if path.exists():
        return CheckpointError(f"checkpoint {path} is not a regular file")
    return CheckpointError(f"checkpoint {path} does not exist")


def _spec(path: Path, payload: dict[str, Any]) -> AgentSpec:
    """The spec of the checkpoint's kind, after checking its format."""
    fmt = payload["format"]
    if fmt not in READABLE_FORMATS:
        readable = ", ".join(map(str, READABLE_FORMATS))
        raise CheckpointError(
            f"checkpoint {path}: format {fmt!r} is not readable by this version "
            f"(readable formats: {readable})"
        )
    kind = payload["kind"] if fmt >= 2 else FORMAT_1_KIND
    try:
        return agent_spec(kind)
    except UnknownAgentKind as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None


def load_checkpoint(path: Path, device: str = "cpu") -> LoadedAgent:
    """Rebuild the greedy agent and the settings it was trained with (a simulated or replayed
    market's; `load_any_checkpoint` also reads a book market's)."""
    loaded = load_any_checkpoint(path, device)
    if isinstance(loaded, LoadedBookAgent):
        raise CheckpointError(
            f"checkpoint {path}: an agent of the limit-order book market, which acts with its "
            "order menu, not a trading speed"
        )
    return loaded


def load_any_checkpoint(path: Path, device: str = "cpu") -> LoadedAgent | LoadedBookAgent:
    """Rebuild the greedy agent and the settings it was trained with, on any market kind (a
    book market's agent always on the CPU: its networks are tiny and its market is numpy)."""
    if not path.is_file():
        raise _missing(path)
    if path.stat().st_size == 0:
        raise _unreadable(path, "an empty file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file at all, truncated, or damaged
        raise _unreadable(path, "not a PyTorch file, or a damaged one") from exc
    try:
        spec = _spec(path, payload)
        settings = Settings.model_validate(saved_settings(payload["settings"]))
    except CheckpointError:
        raise
    except Exception as exc:  # a torch file, but not one of ours (or from a newer version)
        raise _unreadable(path, "a PyTorch file, but not an rl-exec checkpoint") from exc
    if settings.simulation.price_model == "book":
        from rl_order_execution.agents.book import book_params, load_book_agent

        p = book_params(settings)
        try:
            book = load_book_agent(settings, p, payload["weights"])
        except Exception as exc:  # weights that do not fit the network the settings describe
            raise _unreadable(
                path, "its weights do not fit the network its settings describe"
            ) from exc
        return LoadedBookAgent(book, settings, payload)
    target = resolve_device(device)
    try:
        agent = spec.load(settings, payload["weights"], target)
    except Exception as exc:  # weights that do not fit the network the settings describe
        raise _unreadable(path, "its weights do not fit the network its settings describe") from exc
    return LoadedAgent(agent, settings, payload)
