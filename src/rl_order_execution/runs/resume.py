"""Resumable training: the run folder's `resume.pt` (how the run was started and the training
state at its last clean point), the TensorBoard files rewound to that point, and Ctrl-C turned
into a checkpoint at the next clean point.

A run killed at any moment and resumed from this file ends with the same weights and metrics as
the uninterrupted run: the file holds every piece of state the rest of training depends on.
"""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from rl_order_execution.agents.training import TrainingInterrupted
from rl_order_execution.config import Settings, saved_settings
from rl_order_execution.errors import ResumeError
from rl_order_execution.files import atomic_write

RESUME_FILE = "resume.pt"
FORMAT = 1
EVENTS_GLOB = "events.out.tfevents.*"


@dataclass(frozen=True)
class RunManifest:
    """How a run was started: the command, its effective settings, its number of seeds."""

    command: str  # "run" or "train"
    settings: Settings
    seeds: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "settings": self.settings.model_dump(mode="json"),
            "seeds": self.seeds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunManifest:
        settings = Settings.model_validate(saved_settings(data["settings"]))
        return cls(str(data["command"]), settings, int(data["seeds"]))


@dataclass
class StopRequest:
    """Set by Ctrl-C; the training loop saves and stops at its next clean point."""

    requested: bool = False


@contextmanager
def stop_on_interrupt(request: StopRequest) -> Iterator[StopRequest]:
    """The first Ctrl-C asks training to stop at a clean point; a second one stops at once
    (the last checkpoint on disk is whole either way)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C is not ours to handle
        yield request
        return
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


def event_files(folder: Path) -> dict[str, int]:
    """The TensorBoard event files in a folder and their sizes in bytes."""
    return {p.name: p.stat().st_size for p in sorted(folder.glob(EVENTS_GLOB)) if p.is_file()}


def rewind_tensorboard(folder: Path, sizes: dict[str, int]) -> None:
    """Cut the event files back to what they held at the checkpoint, removing later ones, so a
    resumed run writes every step once."""
    for name, size in event_files(folder).items():
        path = folder / name
        if name not in sizes:
            path.unlink()
        elif size > sizes[name]:
            with path.open("r+b") as handle:
                handle.truncate(sizes[name])


def remove_leftovers(folder: Path) -> None:
    """Temporary files of a write that a kill interrupted."""
    for path in folder.glob(f".{RESUME_FILE}.*.tmp"):
        path.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        if payload["format"] != FORMAT:
            raise ResumeError(f"{path}: resume format {payload['format']!r} is not readable")
    except ResumeError:
        raise
    except Exception as exc:  # any failure here means: not a resume file we can use
        raise ResumeError(f"{path}: not a readable resume file ({type(exc).__name__})") from exc
    return payload


def find_manifest(run_dir: Path) -> RunManifest:
    """How the run in run_dir was started, from its resume file (or a seed folder's)."""
    if not run_dir.is_dir():
        raise ResumeError(f"--resume {run_dir}: no such run folder")
    candidates = [run_dir / RESUME_FILE, *sorted(run_dir.glob(f"seed-*/{RESUME_FILE}"))]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        finished = (run_dir / "model.pt").is_file() or (run_dir / "metrics.json").is_file()
        why = "it finished" if finished else "it has no resume.pt"
        raise ResumeError(f"--resume {run_dir}: nothing to resume ({why})")
    try:
        return RunManifest.from_json(_read(found)["manifest"])
    except ResumeError:
        raise
    except Exception as exc:
        raise ResumeError(f"{found}: not a readable resume file ({type(exc).__name__})") from exc


@dataclass
class ResumeFile:
    """The Checkpoints of one training (one seed) in its folder.

    Saves every `interval` episodes (when the count crosses a multiple), when training finishes
    and when Ctrl-C asked to stop; `before_save` flushes the TensorBoard writer so the sizes
    recorded are whole events.
    """

    folder: Path
    manifest: RunManifest
    seed: int
    interval: int
    stop: StopRequest = field(default_factory=StopRequest)
    before_save: Callable[[], None] | None = None
    saved_at: int = 0

    @property
    def path(self) -> Path:
        return self.folder / RESUME_FILE

    def load(self) -> dict[str, Any] | None:
        """The saved payload of this training, if any (after removing a killed write's debris)."""
        remove_leftovers(self.folder)
        return _read(self.path) if self.path.is_file() else None

    def restore(self) -> dict[str, Any] | None:
        payload = self.load()
        state: dict[str, Any] | None = None if payload is None else payload["state"]
        if state is not None:
            self.saved_at = int(payload["episodes"]) if payload is not None else 0
        return state

    def start(self) -> None:
        """Record how the run was started before training does anything, so a kill at any
        moment leaves a folder that --resume understands."""
        if not self.path.is_file():
            self.write(None, 0)

    def reached(self, episodes: int, finished: bool, state: Callable[[], dict[str, Any]]) -> None:
        crossed = episodes // self.interval > self.saved_at // self.interval
        if crossed or finished or self.stop.requested:
            self.write(state(), episodes)
        if self.stop.requested and not finished:
            raise TrainingInterrupted(episodes)

    def write(self, state: dict[str, Any] | None, episodes: int) -> None:
        if self.before_save is not None:
            self.before_save()
        payload = {
            "format": FORMAT,
            "manifest": self.manifest.to_json(),
            "seed": self.seed,
            "episodes": episodes,
            "tensorboard": event_files(self.folder),
            "state": state,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(self.path, lambda h: h.write(buffer.getvalue()))
        self.saved_at = episodes

    def tensorboard_sizes(self) -> dict[str, int]:
        """The event files as they were at the saved point (none before the first save)."""
        payload = self.load()
        return {} if payload is None or payload["state"] is None else dict(payload["tensorboard"])

    def finish(self) -> None:
        """The run is complete: nothing left to resume."""
        self.path.unlink(missing_ok=True)


# flags that choose a setting: with --resume they may only repeat the checkpoint's value
SETTING_FLAGS = {
    "--episodes": "rl.episodes",
    "--seed": "simulation.seed",
    "--device": "rl.device",
    "--eval-episodes": "evaluation.episodes",
    "--agent": "rl.agent",
}
# flags that choose where settings or the folder come from: the checkpoint decides both
SOURCE_FLAGS = ("--config", "--no-best-params", "--output-dir", "--run-name", "--overwrite")


def _setting(settings: Settings, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(settings, section), name)


def resumed_run(run_dir: Path, command: str, flags: dict[str, Any]) -> RunManifest:
    """How to continue the run in run_dir: every setting from its checkpoint. A flag that
    contradicts it is an error naming the flag; only a larger --episodes extends the run."""
    manifest = find_manifest(run_dir)
    if manifest.command != command:
        raise ResumeError(
            f"--resume {run_dir}: the run was started by `rl-exec {manifest.command}`; resume it "
            f"with `rl-exec {manifest.command} --resume {run_dir}`"
        )
    for flag in SOURCE_FLAGS:
        if flags.get(flag) not in (None, False):
            raise ResumeError(
                f"{flag} cannot be combined with --resume: the run's folder and every setting "
                f"come from its checkpoint ({run_dir / RESUME_FILE})"
            )
    settings = manifest.settings
    for flag, key in SETTING_FLAGS.items():
        value, saved = flags.get(flag), _setting(settings, key)
        if value is None or value == saved:
            continue
        if flag == "--episodes" and value > saved:
            rl = settings.rl.model_copy(update={"episodes": value})
            settings = settings.model_copy(update={"rl": rl})
            continue
        extra = " (only a larger --episodes may be given)" if flag == "--episodes" else ""
        raise ResumeError(
            f"{flag} {value} contradicts the run being resumed ({key} = {saved} in its "
            f"checkpoint): --resume takes every setting from the checkpoint{extra}"
        )
    seeds = flags.get("--seeds")
    if seeds is not None and seeds != manifest.seeds:
        raise ResumeError(
            f"--seeds {seeds} contradicts the run being resumed (it trains {manifest.seeds} "
            "seed(s)): --resume takes every setting from the checkpoint"
        )
    return RunManifest(manifest.command, settings, manifest.seeds)
