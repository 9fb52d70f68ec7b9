"""The record in a service process: its engine, its migrations, the embedded archiver.

Opened in the background by the lifespan: a database that is down at start does not keep
the service (the live chat) from starting. Migrations are retried until they pass; the
record's read endpoints answer 503 until then, and the archiver starts once they have run.

In Redis mode the embedded archiver runs on a thread of its own, with its own event loop,
Redis client and database engine: its batches (SQL compilation, the driver) would
otherwise hold up the event loop that writes events to the workbench's streams (``make
bench`` scenario e: p99 9 ms without an archiver, 30 ms with one on the service's loop).
In memory mode it stays on the service's loop, beside the in-memory store it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.attachments.store import LocalAttachmentStore
from infrastructure.bus.redis.pool import make_redis_client
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings
from infrastructure.sessions.record_log import RecordLog

from .archiver import Archiver, MemoryRecordSource, RecordSource, RedisRecordSource
from .database import create_engine, migrate, sqlite_path

logger = logging.getLogger(__name__)

_RETRY_MIN: Final = 0.2
_RETRY_MAX: Final = 10.0
_BACKLOG_EVERY_SECONDS: Final = 5.0
_THREAD_STOP_SECONDS: Final = 5.0

#: Makes the archiver's source on the archiver's own thread (a Redis client binds to the
#: event loop it is used on).
SourceFactory = Callable[[], RecordSource]


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
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    def _files(self) -> LocalAttachmentStore:
        """The chats' files, which the retention purge deletes with their conversations."""
        return LocalAttachmentStore(self.settings.ATTACHMENTS_DIR)

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

    async def start(
        self, source: RecordSource | None, thread_source: SourceFactory | None = None
    ) -> None:
        """``source``: archive on this event loop; ``thread_source``: on a thread of its own."""
        self._source = source
        self._tasks.append(
            asyncio.create_task(self._open(source, thread_source), name="record-open")
        )

    async def _open(self, source: RecordSource | None, thread_source: SourceFactory | None) -> None:
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
        if thread_source is not None and not self._closing:
            self._thread = threading.Thread(
                target=asyncio.run,
                args=(self._archive_on_thread(thread_source),),
                name="record-archiver",
                daemon=True,
            )
            self._thread.start()
            return
        if source is not None and not self._closing:
            self.archiver = Archiver(source, self.engine, self.settings, self._files())
            self._tasks.append(asyncio.create_task(self._backlog_loop(), name="record-backlog"))
            await self.archiver.run()

    async def _archive_on_thread(self, make_source: SourceFactory) -> None:
        engine = create_engine(self.settings.DATABASE_URL)
        source = make_source()
        archiver = Archiver(source, engine, self.settings, self._files())
        self._thread_loop = asyncio.get_running_loop()
        self.archiver = archiver
        if self._closing:  # stop() ran while this thread started
            archiver.stop()
        backlog = asyncio.create_task(self._backlog_loop())
        try:
            await archiver.run()
        finally:
            await stop_task(backlog)
            await source.close()
            await engine.dispose()

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
        thread, loop, archiver = self._thread, self._thread_loop, self.archiver
        if thread is not None:
            if loop is not None and archiver is not None:
                loop.call_soon_threadsafe(archiver.stop)
            await asyncio.to_thread(thread.join, _THREAD_STOP_SECONDS)
        elif archiver is not None:
            archiver.stop()
        opening = [t for t in self._tasks if t.get_name() == "record-open"]
        for task in opening:
            # The archiver finishes (or drops) its batch: what it has not acknowledged
            # stays pending in Redis for the next consumer.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 3.0)
        for task in list(self._tasks):  # all of them now: the open task may have added some
            await stop_task(task)
        if self._source is not None:
            await self._source.close()
        await self.engine.dispose()


def archiver_sources(
    settings: Settings, redis_mode: bool, log: RecordLog | None
) -> tuple[RecordSource | None, SourceFactory | None]:
    """Where this process's archiver reads (on this loop, or a factory for its thread), or
    neither when it runs none."""
    if settings.RECORD_ARCHIVER != "embedded":
        return None, None
    if not redis_mode:
        return (MemoryRecordSource(log) if log is not None else None), None

    def redis_source() -> RecordSource:
        redis: aioredis.Redis = make_redis_client(settings, "archiver")
        return RedisRecordSource(redis, settings)

    url = settings.DATABASE_URL
    if url.startswith("sqlite") and sqlite_path(url) is None:
        # An SQLite database in memory exists on one connection only: share this loop's.
        return redis_source(), None
    return None, redis_source


async def open_record(
    settings: Settings,
    source: RecordSource | None,
    thread_source: SourceFactory | None = None,
) -> Record:
    record = Record(settings, create_engine(settings.DATABASE_URL))
    await record.start(source, thread_source)
    return record


def now_ms() -> int:
    return time.time_ns() // 1_000_000
