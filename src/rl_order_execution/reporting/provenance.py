"""Where a run's numbers come from, so that they can be cited: the agent and every resolved
hyperparameter, the market and its hash, the package versions, the commit, the command, the
times, the platform and the seeds (metrics.json's `provenance`, the head of report.md)."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rl_order_execution.config import Settings
from rl_order_execution.config.identity import settings_market

PACKAGES = (
    "rl-order-execution",
    "torch",
    "numpy",
    "gymnasium",
    "stable-baselines3",
    "optuna",
    "pandas",
)
AGENT_SECTIONS = ("dqn", "ppo", "sac")  # the agent-specific sections of `rl`


def now_utc() -> str:
    """The moment, ISO 8601 in UTC to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def versions() -> dict[str, str | None]:
    """Python's and each package's installed version (None if it is not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state(where: Path | None = None) -> dict[str, Any] | None:
    """The commit of the checkout the toolkit runs from, and whether it has uncommitted changes;
    None when it is not run from a git checkout (an installed wheel, a Docker image)."""
    here = where or Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or not (Path(top.strip()) / "src" / "rl_order_execution").is_dir():
        return None  # a git repository, but not this project's checkout
    commit, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    if commit is None or status is None:
        return None
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def command_line() -> str:
    """The command as the user typed it (`rl-exec ...`)."""
    return shlex.join(["rl-exec", *sys.argv[1:]])


def hyperparameters(settings: Settings) -> dict[str, Any]:
    """Every resolved value the agent trained with: `rl` without the other kinds' sections."""
    rl = settings.rl.model_dump(mode="json")
    kind = settings.rl.agent
    own = "dqn" if kind == "ddqn" else kind
    return {k: v for k, v in rl.items() if k not in AGENT_SECTIONS or k == own}


def market_settings(settings: Settings) -> dict[str, Any]:
    """The settings that define the market: `simulation`, and `replay` or `book` where used."""
    out: dict[str, Any] = {"simulation": settings.simulation.model_dump(mode="json")}
    if settings.simulation.price_model == "replay":
        out["replay"] = settings.replay.model_dump(mode="json")
    if settings.simulation.price_model == "book":
        out["book"] = dict(settings.book)
    return out


@dataclass(frozen=True)
class Provenance:
    """metrics.json's `provenance`."""

    agent: dict[str, Any]
    market: dict[str, Any]
    versions: dict[str, str | None]
    git: dict[str, Any] | None
    command: str
    started: str
    finished: str
    platform: str
    seeds: dict[str, Any]

    @classmethod
    def of(
        cls, settings: Settings, started: str, training_seeds: list[int] | None = None
    ) -> Provenance:
        """The provenance of a command on `settings` that started at `started` and ends now."""
        seeds: dict[str, Any] = {
            "master": settings.simulation.seed,
            "evaluation": settings.evaluation.seed,
        }
        if training_seeds is not None:
            seeds["training"] = training_seeds
        return cls(
            agent={"kind": settings.rl.agent, "hyperparameters": hyperparameters(settings)},
            market={"hash": settings_market(settings), "settings": market_settings(settings)},
            versions=versions(),
            git=git_state(),
            command=command_line(),
            started=started,
            finished=now_utc(),
            platform=platform.platform(),
            seeds=seeds,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "market": self.market,
            "versions": self.versions,
            "git": self.git,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "platform": self.platform,
            "seeds": self.seeds,
        }

    def header_lines(self) -> list[str]:
        """The head of report.md: the same facts in a few lines."""
        commit = "not a git checkout" if self.git is None else self.git["commit"][:12]
        if self.git is not None and self.git["dirty"]:
            commit += " (with uncommitted changes)"
        shown = ", ".join(f"{k} {v}" for k, v in self.versions.items() if v is not None)
        return [
            f"- agent: {self.agent['kind']}; market: {self.market['hash']}; commit: {commit}",
            f"- versions: {shown}",
            f"- command: `{self.command}`",
            f"- started {self.started}, finished {self.finished} (UTC), on {self.platform}",
        ]
