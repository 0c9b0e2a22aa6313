"""One cell of a sweep, run in the current process: an ordinary `rl-exec run` folder.

The only module of `sweeps` that calls the rest of the toolkit (settings, the run, the run-folder
guard, atomic writes), so that a change of layout is followed here alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

from rl_order_execution.config import Settings, SettingsError, load_settings
from rl_order_execution.config.loader import LOGGER_NAME
from rl_order_execution.config.schema import RLSettings
from rl_order_execution.files import atomic_write, write_json, write_text_atomic

__all__ = [
    "CellJob",
    "CellSummary",
    "Settings",
    "SettingsError",
    "atomic_write",
    "cell_settings",
    "fingerprint",
    "finished_cell",
    "known_agents",
    "run_cell",
    "write_json",
    "write_text_atomic",
]

CELL_FILE = "cell.json"  # written last: a cell folder holding it (fingerprint matching) is done
LOG_FILE = "cell.log"  # what the run printed
# Settings that change where or how a run reports, never what it computes: not fingerprinted.
UNFINGERPRINTED = {"logging": ("output_root", "progress", "level")}


def known_agents() -> tuple[str, ...]:
    """The agent kinds `rl.agent` accepts (`rl-exec run --agent`)."""
    return typing.get_args(RLSettings.model_fields["agent"].annotation)


def cell_settings(market: Path, agent: str, seed: int, overrides: Mapping[str, Any]) -> Settings:
    """The settings of `rl-exec run --config MARKET --agent AGENT --seed SEED --no-best-params`
    with the spec's settings as further overrides (`rl-exec run` itself reads them from the
    config file; here they sit on top of it, as the spec says)."""
    flags = {**overrides, "rl.agent": agent, "simulation.seed": seed}
    settings, _ = load_settings(
        flags, config_path=market, best_params_path=None, require_config=True
    )
    return settings


def fingerprint(settings: Settings) -> str:
    """A hash of the resolved settings, minus where the run writes and how it shows progress."""
    dumped = settings.model_dump(mode="json")
    for section, keys in UNFINGERPRINTED.items():
        for key in keys:
            dumped[section].pop(key, None)
    text = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CellJob:
    """What a worker needs to run one attempt of one cell (sent through Dask, so small)."""

    name: str
    cells_dir: str  # absolute: a worker on another machine sees the same shared folder
    settings: dict[str, Any]  # Settings.model_dump(mode="json"), resolved by the sweep
    fingerprint: str
    attempt: int  # 1, 2, ... within this start of the sweep
    session: str  # one per start of the sweep: a rerun of the command starts new attempts

    @property
    def final_dir(self) -> Path:
        return Path(self.cells_dir) / self.name

    @property
    def work_dir(self) -> Path:
        """The attempt writes here, then renames it to `final_dir` once complete."""
        return Path(self.cells_dir) / f".{self.name}.{self.session}.a{self.attempt}"


@dataclass(frozen=True)
class CellSummary:
    """The little a finished cell sends back; everything else is in its folder."""

    name: str
    fingerprint: str
    attempt: int
    training_seconds: float
    evaluation_seconds: float
    host: str
    reused: bool = False  # finished before this attempt started (an earlier start, a duplicate)


class AttemptLost(RuntimeError):
    """The scheduler ran an attempt again after its worker died: that counts as the attempt."""


def finished_cell(folder: Path, fingerprint: str) -> CellSummary | None:
    """The summary of a complete cell folder with this fingerprint, else None."""
    try:
        record = json.loads((folder / CELL_FILE).read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint or not (folder / "metrics.json").is_file():
        return None
    timing = record["timing"]
    return CellSummary(
        name=record["cell"],
        fingerprint=fingerprint,
        attempt=record["attempt"],
        training_seconds=timing["training_seconds"],
        evaluation_seconds=timing["evaluation_seconds"],
        host=record["host"],
        reused=True,
    )


def run_cell(job: CellJob) -> CellSummary:
    """Run one attempt of a cell into its own folder and move it into place once complete.

    A cell already finished with this fingerprint is not run again. A killed attempt leaves only
    its hidden work folder, which the sweep removes."""
    done = finished_cell(job.final_dir, job.fingerprint)
    if done is not None:
        return done
    work = job.work_dir
    try:
        work.mkdir(parents=True)
    except FileExistsError:  # the same attempt started on a worker that then died
        raise AttemptLost("the worker running this attempt died") from None
    settings = Settings.model_validate(job.settings)
    if fingerprint(settings) != job.fingerprint:
        raise RuntimeError(f"settings changed in transit (fingerprint {fingerprint(settings)})")
    start = time.perf_counter()
    training = _run(settings, work)
    timing = {
        "training_seconds": training,
        "evaluation_seconds": time.perf_counter() - start - training,
    }
    return _complete(job, work, timing)


def _run(settings: Settings, folder: Path) -> float:
    """`rl-exec run` into `folder` (printing to its log); the training loop's seconds."""
    from rl_order_execution.experiment import run_experiment
    from rl_order_execution.runs.folders import run_folder

    with run_folder(folder, settings.rl.device), _cell_log(folder / LOG_FILE) as console:
        report = run_experiment(settings, folder, console)
    training = report.training or {}
    return float(training["agent"]["seconds"])


@contextmanager
def _cell_log(path: Path) -> Iterator[Console]:
    """The run's console, its toolkit log and stray prints go to the cell's log file."""
    logger = logging.getLogger(LOGGER_NAME)
    with path.open("w") as log, redirect_stdout(log), redirect_stderr(log):
        console = Console(file=log, width=160, soft_wrap=True)
        handler = RichHandler(console=console, show_path=False)
        logger.addHandler(handler)
        try:
            yield console
        finally:
            logger.removeHandler(handler)


def _complete(job: CellJob, work: Path, timing: dict[str, float]) -> CellSummary:
    """Record the timing in metrics.json, write cell.json last, then rename into place."""
    metrics_path = work / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    write_json(metrics_path, {**metrics, "timing": timing})
    summary = CellSummary(
        name=job.name,
        fingerprint=job.fingerprint,
        attempt=job.attempt,
        training_seconds=timing["training_seconds"],
        evaluation_seconds=timing["evaluation_seconds"],
        host=socket.gethostname(),
    )
    record = {
        "cell": job.name,
        "fingerprint": job.fingerprint,
        "attempt": job.attempt,
        "host": summary.host,
        "timing": timing,
    }
    write_json(work / CELL_FILE, record)
    final = job.final_dir
    if finished_cell(final, job.fingerprint) is not None:  # a duplicate attempt finished first
        shutil.rmtree(work, ignore_errors=True)
        return summary
    if final.exists():  # an earlier cell with other settings, or a partial one
        shutil.rmtree(final)
    os.rename(work, final)
    return summary
