"""Canned replies: the team's ready answers, kept in the record's database (they outlive
Redis and every replica sees the same)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import canned_replies


class ShortcutTaken(ValueError):
    def __init__(self, shortcut: str) -> None:
        super().__init__(f"a canned reply /{shortcut} exists already: choose another shortcut")
        self.shortcut = shortcut


class CannedReplyNotFound(LookupError):
    def __init__(self, reply_id: int) -> None:
        super().__init__(f"no canned reply {reply_id}")
        self.reply_id = reply_id


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: int
    shortcut: str
    content: str
    created_by: str
    updated_at: int


def _reply(row: object) -> CannedReply:
    return CannedReply(*row)  # type: ignore[misc]


_COLUMNS = (
    canned_replies.c.id,
    canned_replies.c.shortcut,
    canned_replies.c.content,
    canned_replies.c.created_by,
    canned_replies.c.updated_at,
)


async def list_replies(engine: AsyncEngine, prefix: str = "") -> list[CannedReply]:
    """By shortcut; ``prefix`` narrows to the shortcuts that start with it."""
    query = select(*_COLUMNS).order_by(canned_replies.c.shortcut)
    if prefix:
        # A prefix of the shortcut's own alphabet (checked by the route): no LIKE escapes.
        query = query.where(canned_replies.c.shortcut.startswith(prefix, autoescape=True))
    async with engine.connect() as connection:
        return [_reply(row) for row in await connection.execute(query)]


async def create(
    engine: AsyncEngine, shortcut: str, content: str, agent_id: str, now: int
) -> CannedReply:
    try:
        async with engine.begin() as connection:
            result = await connection.execute(
                insert(canned_replies)
                .values(shortcut=shortcut, content=content, created_by=agent_id, updated_at=now)
                .returning(*_COLUMNS)
            )
            return _reply(result.one())
    except IntegrityError:
        raise ShortcutTaken(shortcut) from None


async def change(
    engine: AsyncEngine, reply_id: int, shortcut: str, content: str, now: int
) -> CannedReply:
    try:
        async with engine.begin() as connection:
            result = await connection.execute(
                update(canned_replies)
                .where(canned_replies.c.id == reply_id)
                .values(shortcut=shortcut, content=content, updated_at=now)
                .returning(*_COLUMNS)
            )
            row = result.one_or_none()
    except IntegrityError:
        raise ShortcutTaken(shortcut) from None
    if row is None:
        raise CannedReplyNotFound(reply_id)
    return _reply(row)


async def remove(engine: AsyncEngine, reply_id: int) -> None:
    async with engine.begin() as connection:
        result = await connection.execute(
            delete(canned_replies).where(canned_replies.c.id == reply_id)
        )
    if result.rowcount == 0:
        raise CannedReplyNotFound(reply_id)
