"""`rl-exec sweep SPEC.yaml`: validate everything, run the cells not yet finished, aggregate."""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console

from rl_order_execution.sweeps.aggregate import aggregate, read_cell
from rl_order_execution.sweeps.cell import (
    SettingsError,
    cell_settings,
    fingerprint,
    finished_cell,
    run_cell,
    write_json,
)
from rl_order_execution.sweeps.engine import CellOutcome, CellPlan, Cells, Runner, dask_client
from rl_order_execution.sweeps.report import (
    CellStatus,
    Failure,
    SweepReport,
    aggregate_table,
    write_reports,
)
from rl_order_execution.sweeps.spec import SWEEPS_DIR, SweepError, SweepSpec, load_spec

SPEC_FILE = "spec.json"
LOCK_FILE = ".lock"
CELLS = "cells"


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a sweep; the message says what was kept."""


def sweep_command(
    spec: Path,
    workers: int | None,
    scheduler: str | None,
    output_dir: Path | None,
    retries: int,
    console: Console,
    err_console: Console | None = None,
    runner: Runner | None = None,
) -> int:
    """Run a sweep; the exit code: 0 every cell finished, 1 some cell failed after its retries
    (the aggregate is written all the same), 2 bad input (no cell started), 130 interrupted."""
    err = err_console or Console(stderr=True, soft_wrap=True)
    try:
        with _sigterm_as_interrupt():
            return run_sweep(spec, workers, scheduler, output_dir, retries, console, runner)
    except SweepError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt as exc:
        err.print(f"interrupted: {str(exc) or 'stopped by Ctrl-C'}", highlight=False)
        return 130


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a batch system's stop, `kill`) ends the sweep as Ctrl-C does: the cluster closed."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("stopped by SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def plan_cells(spec: SweepSpec, where: Path) -> list[CellPlan]:
    """Every cell's resolved settings, market by market; a setting that is not valid is a spec
    error naming the market, agent and seed."""
    plans = []
    for market in spec.markets:
        for agent in spec.agents:
            for seed in spec.seeds:
                try:
                    settings = cell_settings(market.path, agent, seed, spec.settings)
                except SettingsError as exc:
                    problem = "; ".join(str(exc).splitlines())
                    raise SweepError(
                        f"sweep spec {where}: market {market.name}, agent {agent}, seed {seed}: "
                        f"{problem}"
                    ) from None
                name = f"{market.name}-{agent}-seed{seed}"
                plans.append(
                    CellPlan(name, market.name, agent, seed, settings, fingerprint(settings))
                )
    return plans


def _normalised(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded spec compared as sets of markets, agents and seeds (order is no difference)."""
    return {
        "markets": sorted(recorded.get("markets", [])),
        "agents": sorted(recorded.get("agents", [])),
        "seeds": sorted(recorded.get("seeds", [])),
        "settings": recorded.get("settings", {}),
    }


def check_sweep_folder(sweep_dir: Path, spec: SweepSpec) -> None:
    """Refuse a folder that is not this sweep's: a file, another spec's sweep, someone's files."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise SweepError(f"sweep folder {sweep_dir} exists and is not a folder")
    if not sweep_dir.is_dir():
        return
    recorded_path = sweep_dir / SPEC_FILE
    if not recorded_path.is_file():
        if any(p.name != LOCK_FILE for p in sweep_dir.iterdir()):
            raise SweepError(
                f"sweep folder {sweep_dir} holds files but no sweep ({SPEC_FILE}); choose "
                "another --output-dir"
            )
        return
    try:
        recorded = _normalised(json.loads(recorded_path.read_text()))
    except (OSError, ValueError) as exc:
        raise SweepError(f"{recorded_path}: not readable ({exc})") from None
    wanted = _normalised(spec.recorded())
    for key in ("markets", "agents", "seeds", "settings"):
        if recorded[key] != wanted[key]:
            raise SweepError(
                f"sweep folder {sweep_dir} holds a sweep of other {key} ({recorded[key]} there, "
                f"{wanted[key]} in this spec); choose another --output-dir or name"
            )


@contextmanager
def _locked(sweep_dir: Path) -> Iterator[IO[str]]:
    """One sweep at a time in a folder (the lock goes with the process, even on SIGKILL)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with (sweep_dir / LOCK_FILE).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"sweep folder {sweep_dir} is in use by another sweep") from None
        yield handle


def _remove_work_folders(cells_dir: Path) -> None:
    """Attempts that never completed (a killed sweep or worker) leave hidden work folders."""
    for folder in cells_dir.glob(".*"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class _Started:
    """A sweep folder validated and ready: the cells already finished and those to run."""

    done: dict[str, CellOutcome]
    todo: list[CellPlan]


def _start(sweep_dir: Path, spec: SweepSpec, plans: list[CellPlan], console: Console) -> _Started:
    check_sweep_folder(sweep_dir, spec)  # again, now under the lock
    if not (sweep_dir / SPEC_FILE).is_file():
        write_json(sweep_dir / SPEC_FILE, spec.recorded() | {"name": spec.name})
    cells_dir = sweep_dir / CELLS
    cells_dir.mkdir(exist_ok=True)
    _remove_work_folders(cells_dir)
    done: dict[str, CellOutcome] = {}
    todo = []
    for plan in plans:
        summary = finished_cell(cells_dir / plan.name, plan.fingerprint)
        if summary is not None:
            done[plan.name] = CellOutcome(summary, 0)
        else:
            todo.append(plan)
    changed = [p.name for p in todo if (cells_dir / p.name).exists()]
    console.print(
        f"sweep {spec.name}: {len(plans)} cells, {len(done)} already finished, {len(todo)} to run"
        + (f" ({len(changed)} of them again: settings changed or incomplete)" if changed else ""),
        highlight=False,
    )
    return _Started(done, todo)


def run_sweep(
    spec_path: Path,
    workers: int | None,
    scheduler: str | None,
    output_dir: Path | None,
    retries: int,
    console: Console,
    runner: Runner | None = None,
) -> int:
    """sweep_command without the translation of errors into exit codes."""
    began = time.perf_counter()
    if retries < 0:
        raise SweepError(f"--retries {retries}: must be >= 0")
    if workers is not None and workers < 1:
        raise SweepError(f"--workers {workers}: must be >= 1")
    if workers is not None and scheduler is not None:
        raise SweepError("--workers starts a local cluster; with --scheduler the cluster's own run")
    spec = load_spec(spec_path)
    plans = plan_cells(spec, spec_path)
    sweep_dir = output_dir or SWEEPS_DIR / spec.name
    check_sweep_folder(sweep_dir, spec)
    if all(finished_cell(sweep_dir / CELLS / p.name, p.fingerprint) for p in plans):
        with _locked(sweep_dir):  # nothing left to run: no cluster to start
            outcomes, where = _start(sweep_dir, spec, plans, console).done, "none needed"
    else:
        outcomes, where = _run_on_dask(
            sweep_dir, spec, plans, workers, scheduler, retries, console, runner
        )
    report = _report(spec, plans, outcomes, sweep_dir, time.perf_counter() - began, where)
    paths = write_reports(sweep_dir, report)
    console.print(aggregate_table(report.aggregate))
    for failure in report.failures:
        console.print(f"[red]failed[/red] {failure.cell}: {failure.reason}", highlight=False)
    console.print(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}", highlight=False)
    return 1 if report.failures else 0


def _run_on_dask(
    sweep_dir: Path,
    spec: SweepSpec,
    plans: list[CellPlan],
    workers: int | None,
    scheduler: str | None,
    retries: int,
    console: Console,
    runner: Runner | None,
) -> tuple[dict[str, CellOutcome], str]:
    """Start or reach the cluster, run the cells not finished yet; the outcomes and where."""
    cells_dir = sweep_dir / CELLS
    try:
        with dask_client(workers, scheduler) as client, _locked(sweep_dir):
            where = (
                scheduler or f"local cluster of {len(client.scheduler_info()['workers'])} workers"
            )
            started = _start(sweep_dir, spec, plans, console)
            cells = Cells(client, cells_dir, retries, console, runner or run_cell)
            return started.done | cells.run(started.todo, already=len(started.done)), where
    except KeyboardInterrupt as exc:
        if not cells_dir.is_dir():
            raise
        _remove_work_folders(cells_dir)  # the cluster is closed: no attempt is running now
        kept = sum(finished_cell(cells_dir / p.name, p.fingerprint) is not None for p in plans)
        raise SweepInterrupted(
            f"{str(exc) or 'stopped by Ctrl-C'}; {kept} finished cells kept in {sweep_dir}; "
            "run the same command again to run the rest"
        ) from None


def _report(
    spec: SweepSpec,
    plans: list[CellPlan],
    outcomes: dict[str, CellOutcome],
    sweep_dir: Path,
    wall: float,
    workers: str,
) -> SweepReport:
    """The report from the cells' saved results (never from what came back through Dask)."""
    results, statuses, failures = [], [], []
    for plan in plans:
        outcome = outcomes.get(plan.name)
        folder = sweep_dir / CELLS / plan.name
        ok = outcome is not None and outcome.summary is not None
        result = read_cell(folder, plan.market, plan.agent, plan.seed) if ok else None
        if result is not None:
            results.append(result)
        else:
            reason = outcome.reason if outcome is not None and outcome.reason else "not run"
            failures.append(Failure(plan.name, reason))
        statuses.append(
            CellStatus(
                cell=plan.name,
                market=plan.market,
                agent=plan.agent,
                seed=plan.seed,
                fingerprint=plan.fingerprint,
                status="finished" if result is not None else "failed",
                attempts=outcome.attempts if outcome is not None else 0,
                training_seconds=None if result is None else result.training_seconds,
                evaluation_seconds=None if result is None else result.evaluation_seconds,
            )
        )
    groups = [(m.name, a) for m in spec.markets for a in spec.agents]
    return SweepReport(
        name=spec.name,
        spec=spec.recorded(),
        market_files=spec.market_files(),
        cells=statuses,
        aggregate=aggregate(results, groups),
        failures=failures,
        wall_seconds=wall,
        workers=workers,
    )
