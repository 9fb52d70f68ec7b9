"""A customer's data, exported or erased, in SQL and in Redis; and the retention purge.

The customer id is the session name: a customer token is scoped to one session and
customers have no other identity today (when accounts come, a customer id maps to its
sessions and these functions take each).

Erasure order: Redis first (the live session, its transcript, its channel history, its
unarchived record entries), then SQL, which also writes a tombstone so that an entry the
archiver read before the erasure and commits after it is dropped, not resurrected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.sessions.models import SessionNotFound
from infrastructure.sessions.record_log import record_key, store_prefix
from infrastructure.sessions.redis_store import SessionKeys
from infrastructure.sessions.store import SessionStore

from . import schema
from .writer import upsert

#: Record stream entries scanned per XRANGE while erasing a customer's.
_SCAN_CHUNK: Final = 1000
#: Sessions purged per transaction.
_PURGE_CHUNK: Final = 500


async def _delete_rows(connection: AsyncConnection, names: list[str]) -> int:
    deleted = 0
    for table in (
        schema.notes,
        schema.messages,
        schema.status_changes,
        schema.entries,
        schema.sessions,
    ):
        result = await connection.execute(delete(table).where(table.c.session_name.in_(names)))
        if table is schema.sessions:
            deleted = result.rowcount or 0
    return deleted


async def erase_record(engine: AsyncEngine, session_name: str, now_ms: int) -> bool:
    """Deletes the customer's rows; True when there were any."""
    async with engine.begin() as connection:
        found = await _delete_rows(connection, [session_name]) > 0
        stmt = upsert(connection, schema.erasures).values(
            session_name=session_name, erased_at=now_ms
        )
        await connection.execute(
            stmt.on_conflict_do_update(
                index_elements=["session_name"], set_={"erased_at": stmt.excluded.erased_at}
            )
        )
    return found


async def erase_live(
    redis: aioredis.Redis | None,
    store: SessionStore,
    prefix: str,
    session_name: str,
    channel_keys: Sequence[str] = (),
    clustered: bool = False,
) -> bool:
    """Deletes the customer's live data in Redis (or in memory); True when there was any.
    ``channel_keys``: the session channel's history and epoch keys (the bus names them;
    on a Redis Cluster they are in their channel's slot, not the desk's: deleted apart)."""
    if redis is None:
        found = isinstance(store, InMemorySessionStore) and store.forget(session_name)
        if isinstance(store, InMemorySessionStore) and store.record is not None:
            store.record.forget(session_name)
        return bool(found)
    keys = SessionKeys(store_prefix(prefix, clustered))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(
            keys.session(session_name), keys.transcript(session_name), keys.notes(session_name)
        )
        pipe.zrem(keys.queue, session_name)
        pipe.hdel(keys.held, session_name)
        if channel_keys and not clustered:
            pipe.delete(*channel_keys)
        removed, *_ = await pipe.execute()
    if channel_keys and clustered:
        await redis.delete(*channel_keys)
    await _forget_entries(redis, record_key(prefix, clustered), session_name)
    return bool(removed)


async def _forget_entries(redis: aioredis.Redis, key: str, session_name: str) -> None:
    """XDEL the customer's entries from the record stream (a scan: erasures are rare)."""
    start = "-"
    while True:
        chunk: Any = await redis.xrange(key, min=start, count=_SCAN_CHUNK)
        if not chunk:
            return
        doomed = [eid for eid, fields in chunk if _session_of(fields) == session_name]
        if doomed:
            await redis.xdel(key, *doomed)
        if len(chunk) < _SCAN_CHUNK:
            return
        start = "(" + _text(chunk[-1][0])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _session_of(fields: dict[Any, Any]) -> str:
    value = fields.get(b"session", fields.get("session"))
    return "" if value is None else _text(value)


async def export_live(store: SessionStore, session_name: str) -> dict[str, Any] | None:
    """What Redis (or memory) still holds of the session, if anything."""
    try:
        session = await store.get(session_name)
        messages = await store.messages(session_name, limit=1_000_000)
    except SessionNotFound:
        return None
    return {
        "session": session.model_dump(mode="json"),
        "messages": [m.model_dump(mode="json") for m in messages],
    }


@dataclass
class Purged:
    """What a retention purge deleted: conversations, and the ids of the files their
    messages carried (the caller deletes the files: they are not in SQL)."""

    conversations: int = 0
    attachment_ids: list[str] = field(default_factory=list)


async def purge_before(engine: AsyncEngine, before_ms: int) -> Purged:
    """Deletes conversations whose last entry is older than ``before_ms``."""
    purged = Purged()
    while True:
        async with engine.begin() as connection:
            s, m = schema.sessions, schema.messages
            names = list(
                await connection.scalars(
                    select(s.c.session_name).where(s.c.last_at < before_ms).limit(_PURGE_CHUNK)
                )
            )
            if not names:
                return purged
            carried = await connection.scalars(
                select(m.c.attachment).where(
                    m.c.session_name.in_(names), m.c.attachment.is_not(None)
                )
            )
            purged.attachment_ids += [orjson.loads(a)["id"] for a in carried if a]
            purged.conversations += await _delete_rows(connection, names)
