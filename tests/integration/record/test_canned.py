"""Canned replies in the record's database, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.record import canned


async def test_create_list_change_remove(engine: AsyncEngine) -> None:
    refund = await canned.create(engine, "refund", "Hi {customer_name}, ...", "alice", 1)
    await canned.create(engine, "hello", "Hello, I'm {agent_name}.", "bob", 2)
    await canned.create(engine, "ref_100", "Our reference 100%", "bob", 3)
    assert [r.shortcut for r in await canned.list_replies(engine)] == ["hello", "ref_100", "refund"]
    assert [r.shortcut for r in await canned.list_replies(engine, "ref")] == ["ref_100", "refund"]
    # "_" is a character of the prefix, not a wildcard.
    assert [r.shortcut for r in await canned.list_replies(engine, "ref_")] == ["ref_100"]
    changed = await canned.change(engine, refund.id, "refunds", "New text", 4)
    assert (changed.shortcut, changed.content, changed.updated_at) == ("refunds", "New text", 4)
    await canned.remove(engine, changed.id)
    assert [r.shortcut for r in await canned.list_replies(engine)] == ["hello", "ref_100"]


async def test_a_shortcut_is_the_teams_once(engine: AsyncEngine) -> None:
    first = await canned.create(engine, "hours", "9 to 6", "alice", 1)
    other = await canned.create(engine, "other", "x", "alice", 1)
    with pytest.raises(canned.ShortcutTaken, match="/hours exists already"):
        await canned.create(engine, "hours", "again", "bob", 2)
    with pytest.raises(canned.ShortcutTaken):
        await canned.change(engine, other.id, "hours", "x", 3)
    with pytest.raises(canned.CannedReplyNotFound):
        await canned.change(engine, 999_999, "nope", "x", 3)
    with pytest.raises(canned.CannedReplyNotFound):
        await canned.remove(engine, 999_999)
    assert (await canned.list_replies(engine, "hours"))[0].id == first.id
