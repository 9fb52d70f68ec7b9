"""The archiver between a real redis-server and a real database (SQLite and PostgreSQL):
what the session store accepts reaches SQL exactly once, through crashes between read,
commit and acknowledge, a database that does not answer, and a FLUSHALL."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.attachments.models import Attachment, AttachmentNotFound
from infrastructure.attachments.store import LocalAttachmentStore, StoredAttachment
from infrastructure.config import Settings
from infrastructure.record import queries
from infrastructure.record.archiver import GROUP, Archiver, MemoryRecordSource, RedisRecordSource
from infrastructure.record.database import create_engine
from infrastructure.record.writer import apply_entries
from infrastructure.sessions import ChatMessage, SenderRole, SessionStore
from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.sessions.record_log import RecordLog, record_key
from infrastructure.sessions.redis_store import RedisSessionStore
from tests.conftest import SettingsFactory
from tests.integration.record.test_record_contract import T0, Entries, conversation
from tests.support.processes import async_wait_until


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(RECORD_CLAIM_IDLE_MS=1, RECORD_BATCH_SIZE=50)


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


def source(client: aioredis.Redis, settings: Settings, consumer: str) -> RedisRecordSource:
    return RedisRecordSource(client, settings, consumer=consumer)


async def journey(store: SessionStore, name: str) -> list[str]:
    """A whole conversation; the contents of its messages."""
    said = [f"{name}: hello", f"{name}: 我要退款", f"{name}: here I am", f"{name}: bye"]
    await store.create(name)
    await store.append_message(
        ChatMessage(session_name=name, sender=SenderRole.CUSTOMER, content=said[0])
    )
    await store.escalate(name, "refund")
    await store.append_message(
        ChatMessage(session_name=name, sender=SenderRole.CUSTOMER, content=said[1])
    )
    await store.takeover(name, "alice")
    await store.append_message(
        ChatMessage(session_name=name, sender=SenderRole.AGENT, sender_id="alice", content=said[2])
    )
    await store.release(name, "alice")
    await store.append_message(
        ChatMessage(session_name=name, sender=SenderRole.BOT, content=said[3])
    )
    await store.close(name)
    return said


async def drain(archiver: Archiver) -> None:
    while await archiver.step():
        pass


async def check_recorded(
    engine: AsyncEngine, store: SessionStore, name: str, said: list[str]
) -> dict[str, Any]:
    found = await queries.transcript(engine, name)
    assert found is not None
    assert [m["content"] for m in found["messages"]] == said
    live = await store.messages(name)
    assert [m["id"] for m in found["messages"]] == [m.id for m in live]
    assert [(c["status"], c["agent_id"]) for c in found["status_history"]] == [
        ("waiting_agent", None),
        ("agent_active", "alice"),
        ("ai", "alice"),  # the agent whose handling the release ended
        ("closed", None),
    ]
    assert found["status"] == "closed"
    return found


async def test_everything_accepted_reaches_sql(
    engine: AsyncEngine, settings: Settings, redis_client: aioredis.Redis
) -> None:
    store = RedisSessionStore(redis_client, settings)
    said = await journey(store, "s1")
    archiver = Archiver(source(redis_client, settings, "a"), engine, settings)
    await archiver.source.prepare()
    await archiver.refresh_backlog()
    assert archiver.stats.backlog == 9  # created + 4 statuses + 4 messages
    assert archiver.stats.oldest_pending_ms is not None
    await drain(archiver)
    await check_recorded(engine, store, "s1", said)
    assert archiver.stats.archived == 9
    await archiver.refresh_backlog()
    assert archiver.stats.backlog == 0
    info = await redis_client.xinfo_groups(record_key(settings.REDIS_SSE_CHANNEL_PREFIX))
    assert info[0]["pending"] == 0


async def test_the_memory_twin_records_the_same(engine: AsyncEngine, settings: Settings) -> None:
    log = RecordLog()
    store = InMemorySessionStore(record=log)
    said = await journey(store, "s1")
    archiver = Archiver(MemoryRecordSource(log), engine, settings)
    await drain(archiver)
    await check_recorded(engine, store, "s1", said)
    assert len(log) == 0


async def test_a_consumer_killed_before_or_after_commit_loses_and_duplicates_nothing(
    engine: AsyncEngine, settings: Settings, redis_client: aioredis.Redis
) -> None:
    store = RedisSessionStore(redis_client, settings)
    said = await journey(store, "s1")
    dead = Archiver(source(redis_client, settings, "dead"), engine, settings)
    await dead.source.prepare()
    # read, then "killed" before the commit: its entries stay pending, owned by it
    read = await dead.source.next_batch(4)
    assert len(read) == 4
    # another consumer reads the rest, commits, then is "killed" before XACK
    half = Archiver(source(redis_client, settings, "half"), engine, settings)
    half.source.claim_idle_ms = 3_600_000  # type: ignore[attr-defined]  # no claim yet
    await half.step()
    half._pending = await half.source.next_batch(50)
    # a new consumer claims all of it once idle: everything once
    heir = Archiver(source(redis_client, settings, "heir"), engine, settings)
    await drain(heir)
    assert heir.source.claimed >= 4  # type: ignore[attr-defined]
    await check_recorded(engine, store, "s1", said)
    await heir.refresh_backlog()
    assert heir.stats.backlog == 0


async def test_a_database_that_does_not_answer_delays_and_loses_nothing(
    engine: AsyncEngine, settings: Settings, redis_client: aioredis.Redis
) -> None:
    store = RedisSessionStore(redis_client, settings)
    said = await journey(store, "s1")
    down = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")  # nothing listens
    archiver = Archiver(source(redis_client, settings, "a"), down, settings)
    await archiver.source.prepare()
    for _ in range(3):
        with pytest.raises(OSError, match=r"(?i)connect"):
            await archiver.step()
    await archiver.refresh_backlog()
    assert archiver.stats.backlog == 9
    await down.dispose()
    archiver.engine = engine  # the database is back
    await drain(archiver)
    await check_recorded(engine, store, "s1", said)


async def test_a_flushall_loses_the_group_and_the_archiver_makes_it_again(
    engine: AsyncEngine, settings: Settings, redis_client: aioredis.Redis
) -> None:
    store = RedisSessionStore(redis_client, settings)
    said = await journey(store, "s1")
    archiver = Archiver(source(redis_client, settings, "a"), engine, settings)
    await archiver.source.prepare()
    await drain(archiver)
    await redis_client.flushall()
    await archiver.step()  # NOGROUP: made again
    said2 = await journey(store, "s2")
    await drain(archiver)
    await check_recorded(engine, store, "s2", said2)
    found = await queries.transcript(engine, "s1")  # Redis forgot it; the record did not
    assert found is not None
    assert [m["content"] for m in found["messages"]] == said
    groups = await redis_client.xinfo_groups(record_key(settings.REDIS_SSE_CHANNEL_PREFIX))
    assert [g["name"] for g in groups] == [GROUP.encode()]


async def test_retention_deletes_a_purged_conversations_files(
    engine: AsyncEngine, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    files = LocalAttachmentStore(tmp_path / "attachments")
    e, now = Entries(), int(time.time() * 1000)
    kept: dict[str, str] = {}
    for name, at in (("old", T0), ("new", now)):  # T0: long before the retention window
        attachment_id = secrets.token_hex(16)
        upload = tmp_path / f"{name}.bin"
        upload.write_bytes(b"some file")
        attachment = Attachment(
            id=attachment_id, filename="a.png", content_type="image/png", size=9
        )
        await files.put(StoredAttachment(session_name=name, attachment=attachment), upload, None)
        await apply_entries(engine, [*conversation(e, name, at), e.file(name, at, attachment_id)])
        kept[name] = attachment_id
    settings = settings_factory(RECORD_RETENTION_DAYS=1, RECORD_PURGE_INTERVAL_SECONDS=3600)
    archiver = Archiver(MemoryRecordSource(RecordLog()), engine, settings, files)
    running = asyncio.create_task(archiver.run())
    try:
        await async_wait_until(
            lambda: archiver.stats.purged == 1, timeout=20, description="the purge"
        )
    finally:
        archiver.stop()
        await running
    assert archiver.stats.purged_files == 1
    with pytest.raises(AttachmentNotFound):
        await files.meta(kept["old"])
    assert not any((tmp_path / "attachments").rglob(kept["old"] + "*"))
    assert (await files.meta(kept["new"])).session_name == "new"
    assert await queries.transcript(engine, "old") is None
    assert await queries.transcript(engine, "new") is not None
