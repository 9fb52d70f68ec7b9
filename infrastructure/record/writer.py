"""The archiver's write: a batch of record entries into SQL, in one transaction, idempotent.

Exactly once: every entry's id goes into ``record_entries`` (its primary key) in the same
transaction as its effects, and an entry whose id is there already is skipped. Two
archivers that both hold an entry (one claimed it from the other while it was stuck on a
database outage) cannot both commit it: the second transaction fails on the key, and the
retry finds the entry applied. Entries may arrive out of order (a claim brings old ones
after newer ones): the session's latest status is kept by entry order, not arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import BindParameter, ColumnElement

from infrastructure.sessions.record_log import (
    KIND_MESSAGE,
    KIND_NOTE,
    KIND_RATING,
    KIND_SESSION_CREATED,
    KIND_STATUS,
    RecordEntry,
)

from . import schema


def order_key(entry_id: str) -> str:
    """A string that sorts as the stream ids do (``"<ms>-<seq>"`` does not, as text)."""
    ms, _, seq = entry_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):010d}"


def upsert(connection: AsyncConnection, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for this connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _later(column: Any, value: Any) -> ColumnElement[Any]:
    return case((column < value, value), else_=column)


def _earlier(column: Any, value: Any) -> ColumnElement[Any]:
    return case((column > value, value), else_=column)


async def apply_entries(engine: AsyncEngine, batch: Sequence[RecordEntry]) -> int:
    """Commits what is new in ``batch``; returns how many entries were new."""
    if not batch:
        return 0
    async with engine.begin() as connection:
        return await _apply(connection, batch)


async def _apply(connection: AsyncConnection, batch: Sequence[RecordEntry]) -> int:
    unique = {entry.id: entry for entry in batch}
    known = set(
        await connection.scalars(
            select(schema.entries.c.entry_id).where(schema.entries.c.entry_id.in_(unique))
        )
    )
    fresh = [e for e in unique.values() if e.id not in known]
    if not fresh:
        return 0
    names = sorted({e.session for e in fresh})
    found = await connection.execute(
        select(schema.erasures.c.session_name, schema.erasures.c.erased_at).where(
            schema.erasures.c.session_name.in_(names)
        )
    )
    # Not dict(result): a Result has keys(), so dict() would take it for a mapping.
    erased = {name: at for name, at in found.tuples()}
    # Every fresh id is marked applied, even one dropped as erased: it is done with.
    await connection.execute(
        schema.entries.insert(),
        [{"entry_id": e.id, "session_name": e.session, "kind": e.kind, "ts": e.ts} for e in fresh],
    )
    kept = sorted(
        (e for e in fresh if e.ts > erased.get(e.session, -1)), key=lambda e: order_key(e.id)
    )
    if kept:
        await _apply_kept(connection, kept)
    return len(fresh)


# A batch costs the same dozen statements whatever its size (multi-row inserts, and
# executemany updates with bound parameters): the archiver's CPU goes with the number of
# batches, not entries.


async def _apply_kept(connection: AsyncConnection, kept: list[RecordEntry]) -> None:
    t = schema.sessions
    by_session: dict[str, list[RecordEntry]] = defaultdict(list)
    for entry in kept:
        by_session[entry.session].append(entry)
    await connection.execute(
        upsert(connection, t)
        .values(
            [
                {
                    "session_name": name,
                    "created_at": min(e.ts for e in entries),
                    "last_at": max(e.ts for e in entries),
                    "status": "ai",
                    "status_key": "",
                    "message_count": 0,
                }
                for name, entries in by_session.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["session_name"])
    )
    name: BindParameter[str] = bindparam("b_name")
    first: BindParameter[int] = bindparam("b_first")
    last: BindParameter[int] = bindparam("b_last")
    await connection.execute(
        update(t)
        .where(t.c.session_name == name)
        .values(last_at=_later(t.c.last_at, last), created_at=_earlier(t.c.created_at, first)),
        [
            {
                "b_name": session,
                "b_last": max(e.ts for e in entries),
                # Only a session_created entry may move the start earlier than what is known.
                "b_first": min(
                    (e.ts for e in entries if e.kind == KIND_SESSION_CREATED),
                    default=_NEVER,
                ),
            }
            for session, entries in by_session.items()
        ],
    )
    await _apply_statuses(connection, [e for e in kept if e.kind == KIND_STATUS])
    await _apply_messages(connection, [e for e in kept if e.kind == KIND_MESSAGE])
    await _apply_ratings(connection, [e for e in kept if e.kind == KIND_RATING])
    await _apply_notes(connection, [e for e in kept if e.kind == KIND_NOTE])
    await _apply_agents(connection, kept)


#: A start later than any: ``_earlier`` keeps what is there.
_NEVER = 2**62


async def _apply_statuses(connection: AsyncConnection, statuses: list[RecordEntry]) -> None:
    if not statuses:
        return
    await connection.execute(
        schema.status_changes.insert(),
        [
            {
                "entry_id": e.id,
                "session_name": e.session,
                "ts": e.ts,
                "position": order_key(e.id),
                "status": e.get("status"),
                "previous": e.get("previous") or None,
                "agent_id": e.get("agent_id") or None,
                "reason": e.get("reason") or None,
            }
            for e in statuses
        ],
    )
    latest = {e.session: e for e in statuses}  # in stream order: the last one wins
    t = schema.sessions
    await connection.execute(
        update(t)
        .where(t.c.session_name == bindparam("b_name"), t.c.status_key < bindparam("b_key"))
        .values(
            status=bindparam("b_status"),
            agent_id=bindparam("b_agent"),
            status_key=bindparam("b_key"),
        ),
        [
            {
                "b_name": e.session,
                "b_key": order_key(e.id),
                "b_status": e.get("status"),
                "b_agent": e.get("agent_id") or None,
            }
            for e in latest.values()
        ],
    )


async def _apply_messages(connection: AsyncConnection, messages: list[RecordEntry]) -> None:
    if not messages:
        return
    m = schema.messages
    # A message already there under another entry (the same transcript id) is skipped.
    await connection.execute(
        upsert(connection, m)
        .values(
            [
                {
                    "entry_id": e.id,
                    "session_name": e.session,
                    "message_id": e.get("message_id") or e.id,
                    "ts": e.ts,
                    "position": order_key(e.id),
                    "sender": e.get("sender") or "system",
                    "sender_id": e.get("sender_id") or None,
                    "content": e.get("content"),
                    "attachment": e.get("attachment") or None,
                }
                for e in messages
            ]
        )
        .on_conflict_do_nothing(index_elements=["session_name", "message_id"])
    )
    t = schema.sessions
    count = (
        select(func.count())
        .select_from(m)
        .where(m.c.session_name == bindparam("b_name"))
        .scalar_subquery()
    )
    await connection.execute(
        update(t).where(t.c.session_name == bindparam("b_name")).values(message_count=count),
        [{"b_name": name} for name in sorted({e.session for e in messages})],
    )


async def _apply_notes(connection: AsyncConnection, notes: list[RecordEntry]) -> None:
    if not notes:
        return
    await connection.execute(
        upsert(connection, schema.notes)
        .values(
            [
                {
                    "entry_id": e.id,
                    "session_name": e.session,
                    "note_id": e.get("note_id") or e.id,
                    "ts": e.ts,
                    "agent_id": e.get("agent_id"),
                    "content": e.get("content"),
                }
                for e in notes
            ]
        )
        .on_conflict_do_nothing(index_elements=["session_name", "note_id"])
    )


async def _apply_ratings(connection: AsyncConnection, ratings: list[RecordEntry]) -> None:
    if not ratings:
        return
    latest = {e.session: e for e in ratings}
    t = schema.sessions
    at: BindParameter[int] = bindparam("b_at")
    await connection.execute(
        update(t)
        .where(t.c.session_name == bindparam("b_name"))
        .where(t.c.rated_at.is_(None) | (t.c.rated_at <= at))
        .values(
            rating_score=bindparam("b_score"), rating_comment=bindparam("b_comment"), rated_at=at
        ),
        [
            {
                "b_name": e.session,
                "b_at": e.ts,
                "b_score": int(e.get("score")) if e.get("score").lstrip("-").isdigit() else None,
                "b_comment": e.get("comment") or None,
            }
            for e in latest.values()
        ],
    )


async def _apply_agents(connection: AsyncConnection, entries: list[RecordEntry]) -> None:
    seen: dict[str, tuple[int, int]] = {}
    for e in entries:
        agent = ""
        if e.kind == KIND_STATUS:
            agent = e.get("agent_id")
        elif e.kind == KIND_MESSAGE and e.get("sender") == "agent":
            agent = e.get("sender_id")
        if agent:
            lo, hi = seen.get(agent, (e.ts, e.ts))
            seen[agent] = (min(lo, e.ts), max(hi, e.ts))
    if not seen:
        return
    t = schema.agents
    stmt = upsert(connection, t).values(
        [
            {"agent_id": agent, "first_seen_at": lo, "last_seen_at": hi}
            for agent, (lo, hi) in sorted(seen.items())
        ]
    )
    await connection.execute(
        stmt.on_conflict_do_update(
            index_elements=["agent_id"],
            set_={
                "first_seen_at": _earlier(t.c.first_seen_at, stmt.excluded.first_seen_at),
                "last_seen_at": _later(t.c.last_seen_at, stmt.excluded.last_seen_at),
            },
        )
    )
