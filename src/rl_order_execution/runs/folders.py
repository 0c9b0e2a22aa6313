"""Run folders: where a command writes, what it refuses to overwrite, and what an interrupted
command leaves behind (nothing, unless it saved a result)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.config import Settings, SettingsError


def check_run_name(name: str) -> str:
    """A run name is one folder name under output/runs: it never leaves that folder or hides."""
    if not name or "/" in name or ".." in name or name.startswith("."):
        raise SettingsError(
            f"--run-name {name!r}: a run name is one folder name (no '/', no '..', not "
            "starting with '.'); use --output-dir for a folder elsewhere"
        )
    return name


def stamped_name(prefix: str) -> str:
    """`<prefix>-<date>-<time>`: a new run name for each command."""
    return f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def default_run_dir(settings: Settings, run_name: str | None) -> Path:
    if run_name is not None:
        return settings.logging.output_root / check_run_name(run_name)
    name = datetime.now().strftime("%Y%m%d-%H%M%S") + f"-seed{settings.simulation.seed}"
    return settings.logging.output_root / name


def evaluation_dir(checkpoint: Path) -> Path:
    """A new folder for one evaluation beside the run it evaluates: <run>/evaluations/<time>."""
    root = checkpoint.parent / "evaluations"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():  # two evaluations within one second
        n += 1
        path = root / f"{stamp}-{n}"
    return path


RESULT_FILES = ("model.pt", "resume.pt", "metrics.json")  # a folder holding one holds a result
# What `--overwrite` may delete: the files and folders rl-exec writes into a run folder, and
# nothing else (a mistyped --output-dir must never cost the user their own files).
RUN_FOLDER_FILES = (
    *RESULT_FILES,
    "report.md",
    "benchmark.json",
    "episodes.npz",
    "compare.md",
    "compare.json",
    "*.png",
    "events.out.tfevents.*",
    ".*.tmp",
)
RUN_FOLDER_DIRS = ("seed-*", "evaluations", "evaluations/*")


def _rl_exec_wrote(folder: Path, relative: str = "") -> Path | None:
    """The first entry of folder that rl-exec does not write into a run folder, or None."""
    for entry in sorted(folder.iterdir()):
        name = f"{relative}{entry.name}"
        if entry.is_dir() and not entry.is_symlink():
            if not any(fnmatch(name, pattern) for pattern in RUN_FOLDER_DIRS):
                return entry
            if (found := _rl_exec_wrote(entry, f"{name}/")) is not None:
                return found
        elif not any(fnmatch(entry.name, pattern) for pattern in RUN_FOLDER_FILES):
            return entry
    return None


def check_run_folder(
    run_dir: Path, overwrite: bool = False, resume: bool = False, keep: Path | None = None
) -> None:
    """Refuse, before anything is created, a run folder that already holds files (unless
    `overwrite`, which may only replace what rl-exec wrote), that holds `keep` (the checkpoint an
    evaluation reads) or that cannot be created."""
    if keep is not None and keep.resolve().is_relative_to(run_dir.resolve()):
        raise SettingsError(
            f"output folder {run_dir} holds the checkpoint {keep}: an evaluation never writes "
            "into the run it evaluates (leave out --output-dir, or pick another folder)"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise SettingsError(f"run folder {run_dir} exists and is not a folder")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            stopped = any(run_dir.glob("**/resume.pt"))
            raise SettingsError(
                f"run folder {run_dir} already holds a run: choose another --run-name or "
                "--output-dir, or pass --overwrite to replace its contents"
                + (f" (or --resume {run_dir} to continue it)" if stopped else "")
            )
        if Path.cwd().resolve().is_relative_to(run_dir.resolve()):
            raise SettingsError(f"--overwrite: {run_dir} holds the current folder; not removed")
        if (foreign := _rl_exec_wrote(run_dir)) is not None:
            raise SettingsError(
                f"--overwrite: {run_dir} holds {foreign}, which rl-exec did not write; "
                "remove the folder yourself if you mean it"
            )
    parent = run_dir
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise SettingsError(f"run folder {run_dir}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SettingsError(f"run folder {run_dir}: no permission to write in {parent}")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a command; its message says what was kept (the CLI prints it and exits 130)."""


def _holds_no_result(folder: Path) -> bool:
    """True when folder holds nothing but TensorBoard event files (and empty folders)."""
    files = [f for f in folder.rglob("*") if not f.is_dir()]
    return all(fnmatch(f.name, "events.out.tfevents.*") or fnmatch(f.name, ".*.tmp") for f in files)


@contextmanager
def run_folder(
    run_dir: Path,
    device: str,
    overwrite: bool = False,
    resume: bool = False,
    keep: Path | None = None,
) -> Iterator[Path]:
    """Validate everything a command needs (device, output folder), only then create the folder;
    if the command fails or is interrupted before it saved a result, remove the folder again.

    `overwrite` first removes the contents of an existing run folder; `resume` continues in one;
    `keep` is a file the folder must not hold (the checkpoint an evaluation reads).
    """
    resolve_device(device)  # --device cuda without CUDA fails before any folder exists
    check_run_folder(run_dir, overwrite, resume, keep)
    if overwrite and not resume and run_dir.is_dir():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield run_dir
    except BaseException as exc:
        removed = _holds_no_result(run_dir)
        if removed:
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
            kept = f"{run_dir} removed (nothing was saved)" if removed else f"kept {run_dir}"
            raise RunInterrupted(f"stopped by Ctrl-C; {kept}") from None
        raise
