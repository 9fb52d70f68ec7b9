"""The record's SQL store, the same cases on SQLite and PostgreSQL: migrations, the
archiver's idempotent write, search (Chinese too, hostile input), transcripts, reports,
erasure and retention."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, func, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.record import privacy, queries, reports, schema
from infrastructure.record.database import create_engine, current_revision, migrate
from infrastructure.record.writer import apply_entries
from infrastructure.sessions.record_log import RecordEntry

T0 = 1_760_000_000_000  # epoch ms, a fixed day
MIN = 60_000


class Entries:
    """Record stream entries with increasing ids, as Redis would give them."""

    def __init__(self) -> None:
        self.seq = 0

    def _make(self, kind: str, session: str, ts: int, **fields: str) -> RecordEntry:
        self.seq += 1
        return RecordEntry(f"{ts}-{self.seq}", kind, session, ts, fields)

    def created(self, session: str, ts: int) -> RecordEntry:
        return self._make("session_created", session, ts)

    def status(
        self, session: str, ts: int, status: str, previous: str, agent: str = ""
    ) -> RecordEntry:
        return self._make(
            "status", session, ts, status=status, previous=previous, agent_id=agent, reason=""
        )

    def message(
        self, session: str, ts: int, content: str, sender: str = "customer", sender_id: str = ""
    ) -> RecordEntry:
        return self._make(
            "message",
            session,
            ts,
            message_id=f"{ts}-0",
            sender=sender,
            sender_id=sender_id,
            content=content,
        )

    def file(self, session: str, ts: int, attachment_id: str) -> RecordEntry:
        """A message carrying a file (its ``attachment`` field, as the store writes it)."""
        attachment = orjson.dumps(
            {"id": attachment_id, "filename": "a.png", "content_type": "image/png", "size": 9}
        ).decode()
        return self._make(
            "message",
            session,
            ts,
            message_id=f"{ts}-0",
            sender="customer",
            sender_id="",
            content="",
            attachment=attachment,
        )

    def rating(self, session: str, ts: int, score: int, comment: str = "") -> RecordEntry:
        return self._make("rating", session, ts, score=str(score), comment=comment)


def conversation(e: Entries, name: str, start: int, agent: str = "alice") -> list[RecordEntry]:
    """Created, a message, escalated, waited 2 min, handled 5 min, closed, rated 5."""
    return [
        e.created(name, start),
        e.message(name, start + 1000, f"hello from {name}, I want a refund 我要退款"),
        e.status(name, start + 2000, "waiting_agent", "ai"),
        e.status(name, start + 2000 + 2 * MIN, "agent_active", "waiting_agent", agent),
        e.message(name, start + 3000 + 2 * MIN, "Hi, I am here", "agent", agent),
        e.status(name, start + 2000 + 7 * MIN, "closed", "agent_active", agent),
        e.rating(name, start + 3000 + 7 * MIN, 5, "great"),
    ]


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def test_migrations_up_from_empty_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) is None
        await migrate(engine)
        await migrate(engine)  # a second start: nothing to do
        assert await current_revision(engine) == "0004_message_attachments"
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert {t.name for t in schema.metadata.sorted_tables} <= tables
        await migrate(engine, downgrade_to="base")
        async with engine.connect() as connection:
            left = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert not {t for t in left if t.startswith(("record_", "canned_"))}
        assert await current_revision(engine) is None
        await migrate(engine)  # and up again
        assert await current_revision(engine) == "0004_message_attachments"
    finally:
        await engine.dispose()


async def test_apply_is_idempotent_and_keeps_every_message_once(engine: AsyncEngine) -> None:
    e = Entries()
    batch = conversation(e, "s1", T0)
    assert await apply_entries(engine, batch) == len(batch)
    # the same entries again (a claim after a crash between commit and XACK), and mixed
    assert await apply_entries(engine, batch) == 0
    assert await apply_entries(engine, [*batch[3:], *batch]) == 0
    assert await count(engine, schema.messages) == 2
    assert await count(engine, schema.status_changes) == 3
    assert await count(engine, schema.entries) == len(batch)
    found = await queries.transcript(engine, "s1")
    assert found is not None
    assert found["message_count"] == 2
    assert found["status"] == "closed"
    assert found["agent_id"] == "alice"
    assert found["rating_score"] == 5
    assert found["rating_comment"] == "great"
    assert [m["sender"] for m in found["messages"]] == ["customer", "agent"]
    assert [c["status"] for c in found["status_history"]] == [
        "waiting_agent",
        "agent_active",
        "closed",
    ]


async def test_out_of_order_entries_keep_the_latest_status(engine: AsyncEngine) -> None:
    e = Entries()
    batch = conversation(e, "s1", T0)
    # what a claim can do: the newest first, the older ones in a later batch
    await apply_entries(engine, batch[4:])
    await apply_entries(engine, batch[:4])
    found = await queries.transcript(engine, "s1")
    assert found is not None
    assert found["status"] == "closed"
    assert found["created_at"] == T0
    assert found["message_count"] == 2


async def test_search_finds_words_and_chinese_substrings(engine: AsyncEngine) -> None:
    e = Entries()
    await apply_entries(engine, conversation(e, "s1", T0))
    await apply_entries(
        engine,
        [
            e.created("s2", T0 + 10 * MIN),
            e.message("s2", T0 + 10 * MIN + 1, "我的快递什么时候到？订单号 A-17"),
            e.created("s3", T0 + 20 * MIN),
            e.message("s3", T0 + 20 * MIN + 1, "Where is my PARCEL? 100% late_ok"),
        ],
    )

    async def names(q: str, **kw: object) -> list[str]:
        page = await queries.search_conversations(
            engine,
            queries.ConversationFilter(q=q, **kw),  # type: ignore[arg-type]
        )
        return [i["session_name"] for i in page["items"]]

    assert await names("refund") == ["s1"]
    assert await names("REFUND hello") == ["s1"]  # every word, any case
    assert await names("退款") == ["s1"]  # two characters: below a trigram
    assert await names("快递什么") == ["s2"]  # four: the trigram index
    assert await names("订单") == ["s2"]
    assert await names("parcel") == ["s3"]
    assert await names("100%") == ["s3"]  # LIKE wildcards are only text
    assert await names("late_ok") == ["s3"]
    assert await names("%") == ["s3"]
    assert await names("_") == ["s3"]
    assert await names("nothing-like-this") == []
    # FTS5 and SQL syntax: text, never an error
    for hostile in (
        'refund" OR "a',
        "refund OR hello",
        "NEAR(refund hello)",
        "re*",
        "' OR 1=1 --",
        "'; DROP TABLE record_messages; --",
        '"',
        "^refund",
        "content:refund",
        "\\",
    ):
        assert isinstance(await names(hostile), list), hostile
    assert await count(engine, schema.messages) == 4
    found = await queries.search_conversations(engine, queries.ConversationFilter(q="退款"))
    assert "退款" in (found["items"][0]["snippet"] or "")


async def test_list_newest_first_paginated_with_filters(engine: AsyncEngine) -> None:
    e = Entries()
    for i in range(7):
        await apply_entries(
            engine, conversation(e, f"s{i}", T0 + i * 60 * MIN, agent="bob" if i % 2 else "alice")
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await queries.search_conversations(
            engine, queries.ConversationFilter(limit=3, cursor=cursor)
        )
        seen += [i["session_name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"s{i}" for i in reversed(range(7))]

    bob = await queries.search_conversations(engine, queries.ConversationFilter(agent_id="bob"))
    assert [i["session_name"] for i in bob["items"]] == ["s5", "s3", "s1"]
    closed = await queries.search_conversations(engine, queries.ConversationFilter(status="ai"))
    assert closed["items"] == []
    window = await queries.search_conversations(
        engine,
        queries.ConversationFilter(from_ms=T0 + 2 * 60 * MIN, to_ms=T0 + 3 * 60 * MIN + 1),
    )
    assert [i["session_name"] for i in window["items"]] == ["s3", "s2"]


@pytest.mark.parametrize(
    "cursor", ["garbage", "e30", "WzEsMl0", "W251bGwsICJhIl0", "!!!", "a" * 199]
)
def test_a_malformed_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(queries.InvalidRecordCursor):
        queries.decode_cursor(cursor)


async def test_report_summary(engine: AsyncEngine) -> None:
    e = Entries()
    await apply_entries(engine, conversation(e, "s1", T0, agent="alice"))
    await apply_entries(engine, conversation(e, "s2", T0 + 30 * MIN, agent="bob"))
    # s3: escalated and left while waiting (abandoned); s4: never escalated
    await apply_entries(
        engine,
        [
            e.created("s3", T0 + 40 * MIN),
            e.status("s3", T0 + 41 * MIN, "waiting_agent", "ai"),
            e.status("s3", T0 + 50 * MIN, "closed", "waiting_agent"),
            e.created("s4", T0 + 45 * MIN),
            e.message("s4", T0 + 46 * MIN, "thanks bot"),
        ],
    )
    found = await reports.summary(engine, T0, T0 + 24 * 60 * MIN)
    total = found["total"]
    assert total["conversations"] == 4
    assert total["escalations"] == 3
    assert total["abandoned"] == 1
    assert total["wait_median_seconds"] == 120.0
    assert total["wait_p90_seconds"] == 120.0
    assert total["handle_median_seconds"] == 300.0
    assert total["rating_average"] == 5.0
    assert total["rating_count"] == 2
    agents = {a["agent_id"]: a for a in found["agents"]}
    assert set(agents) == {"alice", "bob"}
    assert agents["alice"]["conversations"] == 1
    assert agents["alice"]["wait_median_seconds"] == 120.0
    assert agents["bob"]["rating_count"] == 1
    assert sum(d["conversations"] for d in found["days"]) == 4
    # a period with nothing in it
    empty = await reports.summary(engine, T0 - 10 * MIN, T0 - MIN)
    assert empty["total"]["conversations"] == 0
    assert empty["total"]["wait_median_seconds"] is None


async def test_erase_and_late_entries_stay_erased(engine: AsyncEngine) -> None:
    e = Entries()
    batch = conversation(e, "s1", T0)
    await apply_entries(engine, batch[:3])
    await apply_entries(engine, conversation(e, "s2", T0))
    assert await privacy.erase_record(engine, "s1", T0 + 60 * MIN)
    assert await queries.transcript(engine, "s1") is None
    # entries the archiver read before the erasure and commits after it: dropped
    await apply_entries(engine, batch[3:])
    assert await queries.transcript(engine, "s1") is None
    assert await queries.transcript(engine, "s2") is not None
    page = await queries.search_conversations(engine, queries.ConversationFilter(q="refund"))
    assert [i["session_name"] for i in page["items"]] == ["s2"]
    assert not await privacy.erase_record(engine, "s1", T0 + 61 * MIN)
    # the name used again later: a new conversation is kept
    await apply_entries(engine, [e.created("s1", T0 + 62 * MIN)])
    assert await queries.transcript(engine, "s1") is not None


async def test_retention_purges_idle_conversations(engine: AsyncEngine) -> None:
    e = Entries()
    old_file, new_file = "a" * 32, "b" * 32
    await apply_entries(engine, [*conversation(e, "old", T0), e.file("old", T0 + MIN, old_file)])
    later = T0 + 10 * 24 * 60 * MIN
    await apply_entries(engine, [*conversation(e, "new", later), e.file("new", later, new_file)])
    purged = await privacy.purge_before(engine, T0 + 5 * 24 * 60 * MIN)
    assert purged.conversations == 1
    assert purged.attachment_ids == [old_file]  # the caller deletes the files
    assert await queries.transcript(engine, "old") is None
    assert await queries.transcript(engine, "new") is not None
    assert await count(engine, schema.messages) == 3


async def test_the_migrations_make_what_schema_py_declares(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[Any]:
        found = compare_metadata(MigrationContext.configure(connection), schema.metadata)
        # the full-text index is the migration's alone (FTS5 tables, a pg_trgm index)
        return [
            d
            for d in found
            if not (
                d[0] in ("remove_table", "remove_index")
                and (getattr(d[1], "name", "") or "").startswith(
                    (schema.SQLITE_FTS_TABLE, schema.PG_TRGM_INDEX)
                )
            )
        ]

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
