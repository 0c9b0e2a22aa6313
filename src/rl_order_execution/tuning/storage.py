"""Where studies live: an RDB storage (SQLite or PostgreSQL) with heartbeats, and its URL.

Optuna creates its tables on first use without a lock, so workers started together on a fresh
database race ("table studies already exists"). `first_use_lock` serialises that first use
across processes and machines (a file lock beside a SQLite file, an advisory lock on PostgreSQL);
`retrying` retries it after a short randomised wait on any other database where it still races.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import optuna
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rl_order_execution.config import OptimizationSettings, SettingsError

SQLITE_TIMEOUT_S = 60
LOCK_KEY = 0x726C2D65786563  # "rl-exec": the PostgreSQL advisory lock of a study's first use
FIRST_USE_ATTEMPTS = 8
T = TypeVar("T")


def display_url(url: str) -> str:
    """The storage URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def in_memory(url: str) -> bool:
    """True for an in-memory SQLite database, which only one process can see."""
    try:
        return url.startswith("sqlite") and make_url(url).database in (None, "", ":memory:")
    except ArgumentError:
        return False


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}  # workers wait for locks
    return {"pool_pre_ping": True}


def _create_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database if url.startswith("sqlite") else None
    return Path(database) if database and database != ":memory:" else None


@contextmanager
def first_use_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock while the storage's tables and the study are created or loaded."""
    sqlite = _sqlite_file(url)
    if sqlite is not None:
        import fcntl

        sqlite.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{sqlite}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif make_url(url).get_backend_name() == "postgresql":
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as connection:
                lock = sqlalchemy.text("SELECT pg_advisory_lock(:key)")
                connection.execute(lock, {"key": LOCK_KEY})
                try:
                    yield
                finally:
                    unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:key)")
                    connection.execute(unlock, {"key": LOCK_KEY})
        finally:
            engine.dispose()
    else:
        yield


def retrying(first_use: Callable[[], T], attempts: int = FIRST_USE_ATTEMPTS) -> T:
    """first_use(), retried after a short randomised wait when simultaneous first uses collide
    (a table or a row that another process created a moment earlier)."""
    jitter = np.random.default_rng([os.getpid(), time.time_ns() % 2**32])  # differs per process
    for attempt in range(attempts):
        try:
            return first_use()
        except (SQLAlchemyError, optuna.exceptions.DuplicatedStudyError):
            if attempt == attempts - 1:
                raise
            time.sleep(float(jitter.uniform(0.05, 0.25)) * 2 ** min(attempt, 4))
    raise AssertionError("unreachable")


def rdb_storage(opt: OptimizationSettings) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            opt.storage,
            engine_kwargs=_engine_kwargs(opt.storage),
            heartbeat_interval=opt.heartbeat_interval,
            grace_period=opt.grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=opt.max_retry
            ),
        )


def make_storage(opt: OptimizationSettings) -> optuna.storages.RDBStorage:
    """The RDB storage with heartbeats; a trial whose worker died is failed and retried."""
    return storage_errors(opt, lambda: retrying(lambda: rdb_storage(opt)))


def storage_errors(opt: OptimizationSettings, use: Callable[[], T]) -> T:
    """use(), with a missing driver or an unusable database turned into one clear message."""
    try:
        _create_sqlite_folder(opt.storage)
        return use()
    except ImportError as exc:
        missing = getattr(exc.__cause__ or exc, "name", None) or "its driver"
        raise SettingsError(
            f"storage {display_url(opt.storage)}: database driver {missing} is not installed "
            "(PostgreSQL: pip install psycopg2-binary and use postgresql+psycopg2://...)"
        ) from exc
    except (ArgumentError, SQLAlchemyError) as exc:
        raise SettingsError(f"storage {display_url(opt.storage)}: cannot open ({exc})") from exc
