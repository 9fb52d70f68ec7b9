"""A file's message in the record: its attachment kept beside its text, on SQLite and
PostgreSQL alike, and read back with the transcript."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.attachments.models import Attachment
from infrastructure.record import queries, schema
from infrastructure.record.writer import apply_entries
from infrastructure.sessions.record_log import RecordEntry

FILE = Attachment(
    id="0123456789abcdef0123456789abcdef",
    filename="发票.pdf",
    content_type="application/pdf",
    size=5120,
)


async def test_an_attachment_is_recorded_with_its_message(engine: AsyncEngine) -> None:
    entries = [
        RecordEntry("1000-0", "session_created", "s1", 1000),
        RecordEntry(
            "1001-0",
            "message",
            "s1",
            1001,
            {
                "message_id": "1001-0",
                "sender": "customer",
                "sender_id": "",
                "content": FILE.filename,
                "attachment": FILE.model_dump_json(),
            },
        ),
        RecordEntry(
            "1002-0",
            "message",
            "s1",
            1002,
            {"message_id": "1002-0", "sender": "bot", "sender_id": "", "content": "thanks"},
        ),
    ]
    await apply_entries(engine, entries)
    await apply_entries(engine, entries)  # read twice after a claim: applied once
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(schema.messages.c.content, schema.messages.c.attachment).order_by(
                    schema.messages.c.position
                )
            )
        ).all()
    assert [r.content for r in rows] == ["发票.pdf", "thanks"]
    assert rows[1].attachment is None
    transcript = await queries.transcript(engine, "s1")
    assert transcript is not None
    recorded = [m["attachment"] for m in transcript["messages"]]
    assert recorded == [FILE.model_dump(), None]
