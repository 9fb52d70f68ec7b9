"""The record in a service process: its engine, its migrations, the embedded archiver.

Opened in the background by the lifespan: a database that is down at start does not keep
the service (the live chat) from starting. Migrations are retried until they pass; the
record's read endpoints answer 503 until then, and the archiver starts once they have run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.bootstrap.redis_client import make_redis_client
from infrastructure.config import Settings
from infrastructure.sessions.record_log import RecordLog

from .archiver import Archiver, MemoryRecordSource, RecordSource, RedisRecordSource
from .database import create_engine, migrate

logger = logging.getLogger(__name__)

_RETRY_MIN: Final = 0.2
_RETRY_MAX: Final = 10.0
_BACKLOG_EVERY_SECONDS: Final = 5.0


class RecordUnavailable(RuntimeError):
    """The record's database is not reachable (or not migrated yet): a 503."""


class Record:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.migrated = asyncio.Event()
        self.archiver: Archiver | None = None
        self.last_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._source: RecordSource | None = None

    def require_ready(self) -> AsyncEngine:
        if not self.migrated.is_set():
            detail = f": {self.last_error}" if self.last_error else ""
            raise RecordUnavailable(f"the record's database is not ready{detail}")
        return self.engine

    def warnings(self) -> list[str]:
        out: list[str] = []
        if not self.migrated.is_set():
            out.append(f"record: database not ready ({self.last_error or 'migrating'})")
        archiver = self.archiver
        if archiver is not None:
            stats = archiver.stats
            if stats.backlog >= self.settings.RECORD_BACKLOG_WARNING:
                out.append(f"record: archiver {stats.backlog} entries behind")
            if stats.last_error:
                out.append(f"record: archiver failing ({stats.last_error})")
        return out

    async def start(self, source: RecordSource | None) -> None:
        self._source = source
        self._tasks.append(asyncio.create_task(self._open(source), name="record-open"))

    async def _open(self, source: RecordSource | None) -> None:
        delay = _RETRY_MIN
        while True:
            try:
                await migrate(self.engine)
                break
            except Exception as exc:  # any failure to reach or migrate: retry, report
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                logger.warning(
                    "record: migrations failed (%s); retrying in %.1fs", self.last_error, delay
                )
                await asyncio.sleep(delay)  # a backoff between attempts, not a test wait
                delay = min(delay * 2, _RETRY_MAX)
        self.last_error = None
        self.migrated.set()
        if source is not None and not self._closing:
            self.archiver = Archiver(source, self.engine, self.settings)
            self._tasks.append(asyncio.create_task(self._backlog_loop(), name="record-backlog"))
            await self.archiver.run()

    async def _backlog_loop(self) -> None:
        while True:
            archiver = self.archiver
            if archiver is not None:
                try:
                    await archiver.refresh_backlog()
                except Exception as exc:  # a gauge: report and go on
                    logger.debug("record: backlog not measured: %r", exc)
            await asyncio.sleep(_BACKLOG_EVERY_SECONDS)

    async def stop(self) -> None:
        self._closing = True
        if self.archiver is not None:
            self.archiver.stop()
        opening = [t for t in self._tasks if t.get_name() == "record-open"]
        for task in opening:
            # The archiver finishes (or drops) its batch: what it has not acknowledged
            # stays pending in Redis for the next consumer.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 3.0)
        for task in self._tasks:  # all of them now: the open task may have added some
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._source is not None:
            await self._source.close()
        await self.engine.dispose()


def archiver_source(
    settings: Settings, redis_mode: bool, log: RecordLog | None
) -> RecordSource | None:
    """Where this process's archiver reads, or None when it runs none."""
    if settings.RECORD_ARCHIVER != "embedded":
        return None
    if redis_mode:
        redis: aioredis.Redis = make_redis_client(settings, "archiver")
        return RedisRecordSource(redis, settings)
    return MemoryRecordSource(log) if log is not None else None


async def open_record(settings: Settings, source: RecordSource | None) -> Record:
    record = Record(settings, create_engine(settings.DATABASE_URL))
    await record.start(source)
    return record


def now_ms() -> int:
    return time.time_ns() // 1_000_000
