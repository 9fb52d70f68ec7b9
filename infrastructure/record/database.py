"""The record's database: the engine ``DATABASE_URL`` names, and its migrations.

PostgreSQL (``postgresql+asyncpg://``) in production, SQLite (``sqlite+aiosqlite://``)
embedded. Migrations run on start, in every process that opens the record, one process
at a time: a PostgreSQL advisory lock, or a lock file beside the SQLite file.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

logger = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
HEAD: Final = "head"
#: Any number that is ours: the advisory lock migrations take on PostgreSQL.
_PG_MIGRATION_LOCK: Final = 2_100_021
#: How long SQLite waits for another writer (the other service, a purge) before failing.
_SQLITE_BUSY_SECONDS: Final = 30.0


class UnsupportedDatabase(ValueError):
    """``DATABASE_URL`` names a database the record does not run on."""


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    return None if database in ("", ":memory:") else Path(database)


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        return create_async_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if backend == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # ``:memory:`` (unit tests): one connection, or each would see a database of its own;
        # checked out by one user at a time (a queue of one), never shared by two at once
        # (StaticPool would: "cannot start a transaction within a transaction").
        pool: dict[str, Any] = (
            {}
            if path is not None
            else {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}
        )
        engine = create_async_engine(parsed, connect_args={"timeout": _SQLITE_BUSY_SECONDS}, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    raise UnsupportedDatabase(
        f"DATABASE_URL: {backend!r} is not supported (use postgresql+asyncpg:// or "
        "sqlite+aiosqlite://)"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling leaves DDL outside transactions: take it over
    # (SQLAlchemy's documented recipe), so that a migration is all or nothing.
    dbapi_connection.isolation_level = None
    # WAL: readers do not block the archiver's writes, nor it them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    lock = path.with_name(path.name + ".migrate-lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def migrate(engine: AsyncEngine, downgrade_to: str | None = None) -> None:
    """Upgrade the schema to the latest revision (or downgrade it to ``downgrade_to``:
    ``"base"`` is empty); one process at a time."""

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()
        try:
            config = _alembic_config(connection)
            if downgrade_to is None:
                command.upgrade(config, HEAD)
            else:
                command.downgrade(config, downgrade_to)
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()

    path = sqlite_path(str(engine.url))
    # Alembic's context is one global per process: two migrations at once (two apps in one
    # test process) would trample it. And across processes: the file or advisory lock.
    async with _process_lock():
        await _migrate_locked(engine, run, path)


async def _migrate_locked(
    engine: AsyncEngine, run: Callable[[Connection], None], path: Path | None
) -> None:
    # The file lock is taken in a thread: flock blocks, the event loop must not.
    lock = _file_lock(path)
    await asyncio.to_thread(lock.__enter__)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run)
    finally:
        lock.__exit__(None, None, None)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )
