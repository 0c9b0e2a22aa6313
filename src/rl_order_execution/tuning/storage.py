"""Where studies live: an RDB storage (SQLite or PostgreSQL) with heartbeats, and its URL."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rl_order_execution.config import OptimizationSettings, SettingsError

SQLITE_TIMEOUT_S = 60


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


def make_storage(opt: OptimizationSettings) -> optuna.storages.RDBStorage:
    """The RDB storage with heartbeats; a trial whose worker died is failed and retried."""
    try:
        _create_sqlite_folder(opt.storage)
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
    except ImportError as exc:
        missing = getattr(exc.__cause__ or exc, "name", None) or "its driver"
        raise SettingsError(
            f"storage {display_url(opt.storage)}: database driver {missing} is not installed "
            "(PostgreSQL: pip install psycopg2-binary and use postgresql+psycopg2://...)"
        ) from exc
    except (ArgumentError, SQLAlchemyError) as exc:
        raise SettingsError(f"storage {display_url(opt.storage)}: cannot open ({exc})") from exc
