"""Reading the record: the conversation list with full-text search, one transcript, a
customer's export.

Search looks for each word of ``q`` as a substring of a message's content
(case-insensitive); a conversation matches when one of its messages holds every word.
SQLite answers from its FTS5 ``trigram`` index (words of three characters or more; a
shorter one, as many Chinese words are, is a ``LIKE`` over the candidates), PostgreSQL
from its pg_trgm index through ``ILIKE``. Substrings rather than words: Chinese has no
spaces for a tokenizer to split on, and a trigram index finds 退款 inside 我要退款了.
User text only ever reaches SQL as bound parameters; FTS5 gets it as quoted phrases.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import and_, exists, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import ColumnElement

from . import schema

#: Words of ``q`` beyond this many are refused (a 422 at the route).
MAX_QUERY_WORDS: Final = 16
#: What a search result quotes of its first matching message.
SNIPPET_CHARS: Final = 160
_TRIGRAM: Final = 3


class InvalidRecordCursor(ValueError):
    """A ``cursor`` this service did not hand out."""


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    q: str | None = None
    agent_id: str | None = None
    status: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    cursor: str | None = None
    limit: int = 20


def encode_cursor(last_at: int, name: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([last_at, name])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last_at, name = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidRecordCursor("cursor: not one this service handed out") from None
    if not isinstance(last_at, int) or not isinstance(name, str) or len(name) > 64:
        raise InvalidRecordCursor("cursor: not one this service handed out")
    return last_at, name


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def words_of(q: str | None) -> list[str]:
    return [] if q is None else q.split()[:MAX_QUERY_WORDS]


def _message_match(dialect: str, words: list[str]) -> ColumnElement[bool]:
    """A condition on ``record_messages`` rows: the content holds every word."""
    m = schema.messages
    conditions: list[ColumnElement[bool]] = []
    if dialect == "sqlite":
        long_words = [w for w in words if len(w) >= _TRIGRAM]
        if long_words:
            # Each word a quoted phrase ("" escapes a quote): FTS5 syntax in q is only text.
            phrase = " AND ".join('"' + w.replace('"', '""') + '"' for w in long_words)
            conditions.append(
                m.c.id.in_(
                    select(text("rowid"))
                    .select_from(text(schema.SQLITE_FTS_TABLE))
                    .where(text(f"{schema.SQLITE_FTS_TABLE} MATCH :fts_phrase"))
                    .params(fts_phrase=phrase)
                )
            )
        conditions += [
            m.c.content.ilike(_like_pattern(w), escape="\\") for w in words if len(w) < _TRIGRAM
        ]
    else:
        conditions += [m.c.content.ilike(_like_pattern(w), escape="\\") for w in words]
    return and_(*conditions)


async def search_conversations(engine: AsyncEngine, query: ConversationFilter) -> dict[str, Any]:
    """``{"items": [...], "next_cursor": str | None}``, newest activity first."""
    s = schema.sessions
    stmt = select(s)
    if query.agent_id:
        sc = schema.status_changes
        stmt = stmt.where(
            or_(
                s.c.agent_id == query.agent_id,
                exists().where(
                    sc.c.session_name == s.c.session_name, sc.c.agent_id == query.agent_id
                ),
            )
        )
    if query.status:
        stmt = stmt.where(s.c.status == query.status)
    if query.from_ms is not None:
        stmt = stmt.where(s.c.last_at >= query.from_ms)
    if query.to_ms is not None:
        stmt = stmt.where(s.c.created_at <= query.to_ms)
    if query.cursor:
        last_at, name = decode_cursor(query.cursor)
        stmt = stmt.where(
            or_(s.c.last_at < last_at, and_(s.c.last_at == last_at, s.c.session_name < name))
        )
    words = words_of(query.q)
    dialect = engine.dialect.name
    if words:
        m = schema.messages
        stmt = stmt.where(
            s.c.session_name.in_(select(m.c.session_name).where(_message_match(dialect, words)))
        )
    stmt = stmt.order_by(s.c.last_at.desc(), s.c.session_name.desc()).limit(query.limit + 1)
    async with engine.connect() as connection:
        rows = [dict(r._mapping) for r in await connection.execute(stmt)]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        snippets: dict[str, str] = {}
        if words and rows:
            m = schema.messages
            found = await connection.execute(
                select(m.c.session_name, m.c.content)
                .where(m.c.session_name.in_([r["session_name"] for r in rows]))
                .where(_message_match(dialect, words))
                .order_by(m.c.position)
            )
            for name, content in found.tuples():
                snippets.setdefault(name, _snippet(content, words))
    items = [_summary(r, snippets.get(r["session_name"])) for r in rows]
    next_cursor = encode_cursor(rows[-1]["last_at"], rows[-1]["session_name"]) if more else None
    return {"items": items, "next_cursor": next_cursor}


def _snippet(content: str, words: list[str]) -> str:
    lowered = content.lower()
    at = min((i for i in (lowered.find(w.lower()) for w in words) if i >= 0), default=0)
    start = max(0, at - SNIPPET_CHARS // 3)
    piece = content[start : start + SNIPPET_CHARS]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(content) else "")


def _summary(row: dict[str, Any], snippet: str | None) -> dict[str, Any]:
    return {
        "session_name": row["session_name"],
        "created_at": row["created_at"],
        "last_at": row["last_at"],
        "status": row["status"],
        "agent_id": row["agent_id"],
        "message_count": row["message_count"],
        "rating_score": row["rating_score"],
        "snippet": snippet,
    }


async def transcript(engine: AsyncEngine, session_name: str) -> dict[str, Any] | None:
    """The whole conversation as recorded, or None when the record has none of it."""
    s, m, sc = schema.sessions, schema.messages, schema.status_changes
    async with engine.connect() as connection:
        row = (await connection.execute(select(s).where(s.c.session_name == session_name))).first()
        if row is None:
            return None
        messages = await connection.execute(
            select(m.c.message_id, m.c.ts, m.c.sender, m.c.sender_id, m.c.content, m.c.attachment)
            .where(m.c.session_name == session_name)
            .order_by(m.c.position)
        )
        changes = await connection.execute(
            select(sc.c.ts, sc.c.status, sc.c.previous, sc.c.agent_id, sc.c.reason)
            .where(sc.c.session_name == session_name)
            .order_by(sc.c.position)
        )
        session = dict(row._mapping)
        return {
            **_summary(session, None),
            "rating_comment": session["rating_comment"],
            "rated_at": session["rated_at"],
            "messages": [
                {
                    "id": r.message_id,
                    "session_name": session_name,
                    "sender": r.sender,
                    "sender_id": r.sender_id,
                    "content": r.content,
                    "ts": r.ts,
                    "attachment": orjson.loads(r.attachment) if r.attachment else None,
                }
                for r in messages
            ],
            "status_history": [dict(r._mapping) for r in changes],
        }
