"""The archiver: the record stream into SQL, exactly once, off the request path.

A Redis consumer group (``record-archiver``) on the one record stream; each replica of the
workbench is one consumer (``<SERVICE_NAME>:<host>:<pid>``). A batch is read with
``XREADGROUP``, committed in one transaction (``writer.apply_entries``, idempotent on the
entry id), and only then ``XACK``ed. While the database is down the batch stays pending
and is retried with backoff, and nothing new is read: Redis keeps the backlog (the
stream's ``RECORD_STREAM_MAXLEN``). A consumer killed mid-batch leaves its entries
pending; any consumer claims them with ``XAUTOCLAIM`` once idle ``RECORD_CLAIM_IDLE_MS``.
A FLUSHALL (or a Redis that came back empty) loses the group: it is made again.

Run inside the workbench by default (``RECORD_ARCHIVER=embedded``), or alone:
``python -m infrastructure.record.archiver``. In memory mode the source is the
in-memory ``RecordLog`` of the process's session store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.attachments.store import AttachmentStore
from infrastructure.config import Settings
from infrastructure.sessions.record_log import RecordEntry, RecordLog, record_key

from .privacy import purge_before
from .writer import apply_entries

logger = logging.getLogger(__name__)

GROUP: Final = "record-archiver"
#: How long one XREADGROUP waits for new entries (under the client's socket timeout).
_BLOCK_MS: Final = 1000
_BACKOFF_MIN: Final = 0.1
_BACKOFF_MAX: Final = 5.0
#: How often pending entries of dead consumers are looked for.
_CLAIM_EVERY_SECONDS: Final = 5.0
#: Without XINFO's ``lag`` (Redis < 7), the backlog is counted up to this many.
_BACKLOG_COUNT_CAP: Final = 10_000


@dataclass
class ArchiverStats:
    archived: int = 0
    duplicates: int = 0
    claimed: int = 0
    malformed: int = 0
    errors: int = 0
    purged: int = 0
    purged_files: int = 0
    last_error: str | None = None
    last_commit_ms: int | None = None
    backlog: int = 0
    oldest_pending_ms: int | None = None
    running: bool = False


Batch = list[tuple[str, RecordEntry | None]]


class RecordSource(Protocol):
    async def prepare(self) -> None: ...
    async def next_batch(self, count: int) -> Batch: ...
    async def ack(self, ids: Sequence[str]) -> None: ...
    async def backlog(self) -> tuple[int, int | None]: ...
    async def close(self) -> None: ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, raw: Any) -> tuple[str, RecordEntry | None]:
    eid = _text(entry_id)
    if not raw:  # deleted (an erased customer's) while pending
        return eid, None
    fields = {_text(k): _text(v) for k, v in raw.items()}
    try:
        return eid, RecordEntry.from_stream(eid, fields)
    except ValueError:
        logger.error("record entry %s is malformed and is skipped: %r", eid, fields)
        return eid, None


def consumer_name(settings: Settings) -> str:
    return f"{settings.SERVICE_NAME}:{socket.gethostname()}:{os.getpid()}"


class RedisRecordSource:
    def __init__(
        self, redis: aioredis.Redis, settings: Settings, consumer: str | None = None
    ) -> None:
        self.redis = redis
        self.key = record_key(settings.REDIS_SSE_CHANNEL_PREFIX, settings.redis_clustered)
        self.consumer = consumer or consumer_name(settings)
        self.claim_idle_ms = settings.RECORD_CLAIM_IDLE_MS
        self._next_claim = 0.0
        self.claimed = 0

    async def prepare(self) -> None:
        try:
            # From the start of the stream: what was accepted before the first archiver ran.
            await self.redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def next_batch(self, count: int) -> Batch:
        try:
            return await self._next_batch(count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.prepare()  # Redis lost the group (FLUSHALL, an empty restart)
            return []

    async def _next_batch(self, count: int) -> Batch:
        now = time.monotonic()
        if now >= self._next_claim:
            claimed = await self._claim(count)
            if claimed:
                return claimed
            self._next_claim = now + min(_CLAIM_EVERY_SECONDS, self.claim_idle_ms / 1000)
        reply = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.key: ">"}, count=count, block=_BLOCK_MS
        )
        batch: Batch = []
        for _stream, entries in _streams(reply):
            batch += [_entry(eid, raw) for eid, raw in entries]
        return batch

    async def _claim(self, count: int) -> Batch:
        """Pending entries idle long enough (their consumer died, or is stuck): ours now."""
        reply = await self.redis.xautoclaim(
            self.key, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=count
        )
        entries = reply[1] if len(reply) > 1 else []
        deleted = [_text(i) for i in reply[2]] if len(reply) > 2 else []
        if deleted:
            # XAUTOCLAIM drops ids of deleted entries from the pending list itself.
            logger.info("%d pending record entries were deleted before archiving", len(deleted))
        batch = [_entry(eid, raw) for eid, raw in entries]
        if batch:
            self.claimed += len(batch)
            logger.warning("claimed %d record entries of a dead consumer", len(batch))
            # More may wait: claim again on the next call.
            self._next_claim = 0.0
        return batch

    async def ack(self, ids: Sequence[str]) -> None:
        if ids:
            await self.redis.xack(self.key, GROUP, *ids)

    async def backlog(self) -> tuple[int, int | None]:
        """Entries not yet archived (pending + never delivered) and the oldest one's time."""
        try:
            groups = await self.redis.xinfo_groups(self.key)
        except ResponseError:  # no stream yet
            return 0, None
        group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
        if group is None:
            return await self._count_after("-"), await self._first_after("-")
        pending = int(group.get("pending") or 0)
        last = _text(group.get("last-delivered-id") or "0-0")
        lag = group.get("lag")
        behind = int(lag) if lag is not None else await self._count_after("(" + last)
        oldest: int | None = None
        if pending:
            summary = await self.redis.xpending(self.key, GROUP)
            low = summary.get("min") if isinstance(summary, dict) else None
            oldest = int(_text(low).split("-")[0]) if low else None
        if oldest is None and behind:
            oldest = await self._first_after("(" + last)
        return pending + behind, oldest

    async def _count_after(self, start: str) -> int:
        entries: Any = await self.redis.xrange(self.key, min=start, count=_BACKLOG_COUNT_CAP)
        return len(entries)

    async def _first_after(self, start: str) -> int | None:
        entries: Any = await self.redis.xrange(self.key, min=start, count=1)
        return int(_text(entries[0][0]).split("-")[0]) if entries else None

    async def close(self) -> None:
        await self.redis.aclose()


def _streams(reply: Any) -> list[tuple[Any, Any]]:
    # RESP2: [[name, entries]]; RESP3: {name: entries}.
    if isinstance(reply, dict):
        return list(reply.items())
    return [(s[0], s[1]) for s in reply or []]


class MemoryRecordSource:
    """The in-memory twin: the process's own ``RecordLog`` (memory mode)."""

    def __init__(self, log: RecordLog) -> None:
        self.log = log
        self.claimed = 0

    async def prepare(self) -> None:
        return None

    async def next_batch(self, count: int) -> Batch:
        await self.log.wait(_BLOCK_MS / 1000)
        return [(e.id, e) for e in self.log.read(count)]

    async def ack(self, ids: Sequence[str]) -> None:
        self.log.ack(list(ids))

    async def backlog(self) -> tuple[int, int | None]:
        return len(self.log), self.log.oldest_ts()

    async def close(self) -> None:
        return None


class Archiver:
    """``files``: where the chats' attachments are, so that the retention purge deletes a
    purged conversation's files with it (none given: only its rows)."""

    def __init__(
        self,
        source: RecordSource,
        engine: AsyncEngine,
        settings: Settings,
        files: AttachmentStore | None = None,
    ) -> None:
        self.source = source
        self.engine = engine
        self.files = files
        self.batch_size = settings.RECORD_BATCH_SIZE
        self.interval = settings.RECORD_BATCH_INTERVAL_SECONDS
        self._last_read = 0
        self.retention_days = settings.RECORD_RETENTION_DAYS
        self.purge_interval = settings.RECORD_PURGE_INTERVAL_SECONDS
        self.stats = ArchiverStats()
        self._stopping = asyncio.Event()
        self._pending: Batch = []
        self._next_purge = 0.0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Until :meth:`stop`; every error is logged, counted, and retried with backoff."""
        self.stats.running = True
        delay = _BACKOFF_MIN
        prepared = False
        try:
            while not self._stopping.is_set():
                try:
                    if not prepared:
                        await self.source.prepare()
                        prepared = True
                    await self.step()
                    await self._maybe_purge()
                    delay = _BACKOFF_MIN
                    if self.interval and self._last_read < self.batch_size:
                        # Not behind: let the next entries gather (pacing, off the hot path).
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), self.interval)
                except (RedisError, OSError, SQLAlchemyError) as exc:
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    logger.warning("archiver: %s (retrying in %.1fs)", self.stats.last_error, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), delay)
                    delay = min(delay * 2, _BACKOFF_MAX)
        finally:
            self.stats.running = False

    async def step(self) -> int:
        """One batch: read (unless one waits for its commit), commit, acknowledge."""
        if not self._pending:
            self._pending = await self.source.next_batch(self.batch_size)
            self._last_read = len(self._pending)
        if not self._pending:
            return 0
        entries = [e for _, e in self._pending if e is not None]
        fresh = await apply_entries(self.engine, entries)
        ids = [eid for eid, _ in self._pending]
        await self.source.ack(ids)
        self._pending = []
        self.stats.archived += fresh
        self.stats.duplicates += len(entries) - fresh
        self.stats.malformed += len(ids) - len(entries)
        self.stats.last_commit_ms = time.time_ns() // 1_000_000
        self.stats.last_error = None
        self.stats.claimed = getattr(self.source, "claimed", 0)
        return fresh

    async def refresh_backlog(self) -> None:
        backlog, oldest = await self.source.backlog()
        self.stats.backlog, self.stats.oldest_pending_ms = backlog, oldest

    async def _maybe_purge(self) -> None:
        if not self.retention_days or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_interval
        before = time.time_ns() // 1_000_000 - self.retention_days * 86_400_000
        purged = await purge_before(self.engine, before)
        files = 0
        if self.files is not None:
            for attachment_id in purged.attachment_ids:
                try:
                    files += await self.files.delete(attachment_id)
                except OSError as exc:  # its rows are gone: say which file is left behind
                    logger.error("retention: file %s not deleted (%r)", attachment_id, exc)
        if purged.conversations:
            self.stats.purged += purged.conversations
            self.stats.purged_files += files
            logger.info(
                "retention: purged %d conversations idle since before %d, and %d files",
                purged.conversations,
                before,
                files,
            )


async def run_standalone(settings: Settings) -> None:
    """The archiver as a process of its own, until SIGTERM/SIGINT (set
    ``RECORD_ARCHIVER=off`` on the workbench then, or both archive: that is safe too)."""
    import signal

    from infrastructure.bus.redis.pool import make_redis_client

    from .database import create_engine
    from .service import Record

    record = Record(settings, create_engine(settings.DATABASE_URL))
    await record.start(RedisRecordSource(make_redis_client(settings, "archiver"), settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "archiver %s: %s -> %s",
        consumer_name(settings),
        settings.REDIS_URL,
        record.engine.url.render_as_string(hide_password=True),
    )
    await stop.wait()
    await record.stop()


def main() -> None:
    from infrastructure.config import get_settings

    settings = get_settings()
    logging.basicConfig(level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run_standalone(settings))


if __name__ == "__main__":
    main()
