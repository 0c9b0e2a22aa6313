"""Cells on Dask's distributed scheduler: the cluster's lifecycle, one attempt at a time per cell,
at most 1 + retries attempts whatever ends them, and a Rich view of the cells."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dask
from distributed import Client, Future, LocalCluster, Nanny
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.scheduler import KilledWorker
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rl_order_execution.sweeps.cell import (
    LOG_FILE,
    AttemptLost,
    CellJob,
    CellSummary,
    Settings,
    run_cell,
)
from rl_order_execution.sweeps.spec import SweepError

CONNECT_TIMEOUT = 30.0  # seconds to reach an existing scheduler before the sweep gives up
POLL_SECONDS = 0.2
LOCAL_HOST = "127.0.0.1"  # a local cluster never listens beyond this machine
DIED = "its worker process died (killed, or out of memory)"


class SweepWorker(WorkerPlugin):
    """Every worker runs torch on one thread (the cells are the parallelism). A local cluster's
    workers also leave Ctrl-C to the sweep, which closes the cluster in order (a terminal sends
    SIGINT to every process of the command); an existing cluster's workers are left as they are."""

    name = "rl-exec-sweep-worker"

    def __init__(self, local: bool) -> None:
        self.local = local

    def setup(self, worker: Any) -> None:
        import torch

        torch.set_num_threads(1)
        if self.local:
            with contextlib.suppress(ValueError):  # only a main thread may set a handler
                signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """The CPUs this process may use (a batch job's or taskset's share, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _QuickNanny(Nanny):
    """A local worker's nanny that gives a busy worker one second to stop before ending it: a
    cell cannot be interrupted, and Ctrl-C should not wait for it (its attempt is discarded)."""

    async def close(  # type: ignore[override]  # as Nanny.close itself
        self, timeout: float = 1.0, reason: str = "nanny-close"
    ) -> Literal["OK"]:
        return await super().close(timeout=timeout, reason=reason)


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of an existing scheduler, or of a LocalCluster of one-thread worker processes
    on 127.0.0.1 that is closed (its processes ended) when the block exits, however it exits."""
    cluster: LocalCluster | None = None
    # a worker that dies fails its task at once (the sweep counts that as an attempt), instead of
    # the scheduler silently running it again on another worker
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        if scheduler is not None:
            client = _connect(scheduler)
        else:
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                host=LOCAL_HOST,
                # no dashboard; the scheduler's HTTP routes (health, metrics) still start, on a
                # free loopback port, not on 8787 (two sweeps at once would warn of a port in use)
                dashboard_address=f"{LOCAL_HOST}:0",
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.CRITICAL,
                worker_class=_QuickNanny,  # failures are the sweep's to report
            )
            client = Client(cluster)  # type: ignore[no-untyped-call]
        try:
            client.register_plugin(SweepWorker(local=cluster is not None))
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
            if cluster is not None:
                cluster.close()


def _connect(address: str) -> Client:
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        reason = "" if isinstance(exc, OSError | TimeoutError) else f" ({exc})"
        raise SweepError(
            f"scheduler {address}: not reachable within {CONNECT_TIMEOUT:g} s{reason}"
        ) from None


@dataclass(frozen=True)
class CellPlan:
    """A cell the sweep runs: its axes, its resolved settings and their fingerprint."""

    name: str
    market: str
    agent: str
    seed: int
    settings: Settings
    fingerprint: str

    def job(self, cells_dir: Path, attempt: int, session: str) -> CellJob:
        return CellJob(
            name=self.name,
            cells_dir=str(cells_dir.resolve()),
            settings=self.settings.model_dump(mode="json"),
            fingerprint=self.fingerprint,
            attempt=attempt,
            session=session,
        )


@dataclass(frozen=True)
class CellOutcome:
    """How a cell ended in this start of the sweep."""

    summary: CellSummary | None
    attempts: int
    reason: str | None = None  # why its last attempt failed


Runner = Callable[[CellJob], CellSummary]


def new_session() -> str:
    return secrets.token_hex(4)


def failed_log(sweep_dir: Path, cell: str) -> Path:
    return sweep_dir / "failed" / f"{cell}.log"


def discard_attempt(job: CellJob, sweep_dir: Path) -> None:
    """Keep a failed attempt's log (failed/<cell>.log), remove the rest of its work folder."""
    log = job.work_dir / LOG_FILE
    if log.is_file():
        failed_log(sweep_dir, job.name).parent.mkdir(exist_ok=True)
        os.replace(log, failed_log(sweep_dir, job.name))
    shutil.rmtree(job.work_dir, ignore_errors=True)


def _failure(future: Future[CellSummary]) -> str:
    """One line: what ended a failed attempt."""
    if future.status == "cancelled":
        return "cancelled by the scheduler"
    exc = future.exception()  # type: ignore[no-untyped-call]
    if isinstance(exc, KilledWorker | AttemptLost):
        return DIED
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class Cells:
    """The cells of one start of the sweep on one client, attempt by attempt."""

    def __init__(
        self,
        client: Client,
        cells_dir: Path,
        retries: int,
        console: Console,
        runner: Runner = run_cell,
    ) -> None:
        self.client, self.cells_dir, self.retries = client, cells_dir, retries
        self.console, self.runner = console, runner
        self.session = new_session()
        self.pending: dict[Future[CellSummary], tuple[CellPlan, CellJob]] = {}
        self.outcomes: dict[str, CellOutcome] = {}

    def submit(self, plan: CellPlan, attempt: int) -> None:
        job = plan.job(self.cells_dir, attempt, self.session)
        key = f"sweep-cell-{plan.name}-{self.session}-a{attempt}"
        future = self.client.submit(self.runner, job, key=key, pure=False)
        self.pending[future] = (plan, job)

    def run(self, plans: list[CellPlan], already: int = 0) -> dict[str, CellOutcome]:
        """Run every plan to success or 1 + retries failed attempts."""
        for plan in plans:
            self.submit(plan, 1)
        columns = (
            TextColumn("[bold]cells"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task("cells", total=len(plans) + already, status="")
            while self.pending:
                for future in [f for f in self.pending if f.done()]:  # type: ignore[no-untyped-call]
                    self._settle(future, progress)
                failed = sum(o.summary is None for o in self.outcomes.values())
                running = sum(job.work_dir.is_dir() for _, job in self.pending.values())
                progress.update(
                    task,
                    completed=already + len(self.outcomes),
                    status=f"done {already + len(self.outcomes) - failed}  running {running}  "
                    f"failed {failed}  waiting {len(self.pending) - running}",
                )
                time.sleep(POLL_SECONDS)
        return self.outcomes

    def _settle(self, future: Future[CellSummary], progress: Progress) -> None:
        plan, job = self.pending.pop(future)
        say = progress.console.print
        if future.status == "finished":
            summary: CellSummary = future.result()
            self.outcomes[plan.name] = CellOutcome(summary, job.attempt)
            failed_log(self.cells_dir.parent, plan.name).unlink(missing_ok=True)
            say(
                f"[green]done[/green]   {plan.name}  training {summary.training_seconds:.1f} s, "
                f"evaluation {summary.evaluation_seconds:.1f} s",
                highlight=False,
            )
            return
        reason = _failure(future)
        discard_attempt(job, self.cells_dir.parent)
        attempts = 1 + self.retries
        if job.attempt < attempts:
            say(
                f"[yellow]retry[/yellow]  {plan.name}  attempt {job.attempt} of {attempts} "
                f"failed: {reason}",
                highlight=False,
            )
            self.submit(plan, job.attempt + 1)
            return
        self.outcomes[plan.name] = CellOutcome(None, job.attempt, reason)
        say(
            f"[red]failed[/red] {plan.name}  after {job.attempt} attempts: {reason}",
            highlight=False,
        )
