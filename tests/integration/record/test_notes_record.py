"""Agents' notes in the record: kept apart from the messages, applied once, erased with the
customer's data; on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.record import privacy, queries, schema
from infrastructure.record.writer import apply_entries
from infrastructure.sessions.record_log import RecordEntry


def _entries(session: str) -> list[RecordEntry]:
    return [
        RecordEntry("1000-0", "session_created", session, 1000),
        RecordEntry(
            "1001-0",
            "message",
            session,
            1001,
            {"message_id": "1001-0", "sender": "customer", "sender_id": "", "content": "hello"},
        ),
        RecordEntry(
            "1002-0",
            "note",
            session,
            1002,
            {"note_id": "1002-0", "agent_id": "hana", "content": "VIP: be quick"},
        ),
    ]


async def test_a_note_is_kept_apart_and_erased_with_the_customer(engine: AsyncEngine) -> None:
    await apply_entries(engine, _entries("s1"))
    await apply_entries(engine, _entries("s1"))  # read twice after a claim: applied once
    async with engine.connect() as connection:
        rows = (
            await connection.execute(select(schema.notes.c.agent_id, schema.notes.c.content))
        ).all()
    assert [tuple(r) for r in rows] == [("hana", "VIP: be quick")]
    transcript = await queries.transcript(engine, "s1")
    assert transcript is not None
    assert "VIP" not in repr(transcript)  # what a customer may read: messages only
    assert await privacy.erase_record(engine, "s1", 2000)
    async with engine.connect() as connection:
        assert (await connection.execute(select(schema.notes))).all() == []
