"""The behaviour every ``SessionStore`` shares, part two: the transcript and concurrency, run
against memory and Redis alike (``test_store_contract.py`` has the lifecycle)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from infrastructure.sessions.models import (
    ChatMessage,
    IllegalTransition,
    NotHolder,
    SenderRole,
    Session,
    SessionHeldByAnother,
    SessionStatus,
)
from infrastructure.sessions.store import SessionStore

from .fakes import HOLDER, OTHER, S, StoreFactory, bring_to

# --- the transcript -----------------------------------------------------------


def message(sender: SenderRole, content: str, sender_id: str | None = None) -> ChatMessage:
    return ChatMessage(session_name="s1", sender=sender, sender_id=sender_id, content=content)


async def test_messages_are_kept_in_order_with_ids(store: SessionStore) -> None:
    await store.create("s1")
    sent = [
        await store.append_message(message(SenderRole.CUSTOMER, "你好")),
        await store.append_message(message(SenderRole.BOT, "hello, how can I help?")),
        await store.append_message(message(SenderRole.SYSTEM, "escalated")),
    ]
    ids = [m.id for m in sent]
    assert all(ids)
    assert len(set(ids)) == 3
    stored = await store.messages("s1")
    assert stored == sent
    assert [m.content for m in stored] == ["你好", "hello, how can I help?", "escalated"]
    # ids order like the messages: "<ms>-<seq>", compared numerically
    keys = [tuple(int(part) for part in i.split("-")) for i in ids]
    assert keys == sorted(keys)


async def test_message_fields_round_trip(store: SessionStore) -> None:
    await bring_to(store, "s1", S.AGENT_ACTIVE)
    original = message(SenderRole.AGENT, "I'm Ann, I can help.", sender_id=HOLDER)
    stored = await store.append_message(original)
    [read] = await store.messages("s1")
    assert read == stored
    assert read.sender is SenderRole.AGENT
    assert read.sender_id == HOLDER
    assert read.content == original.content
    # kept at millisecond precision
    assert abs(read.timestamp - original.timestamp) < timedelta(milliseconds=1)


async def test_messages_limit_returns_the_latest_oldest_first(store: SessionStore) -> None:
    await store.create("s1")
    for i in range(6):
        await store.append_message(message(SenderRole.CUSTOMER, f"m{i}"))
    assert [m.content for m in await store.messages("s1", limit=3)] == ["m3", "m4", "m5"]
    assert await store.messages("s1", limit=0) == []
    assert len(await store.messages("s1", limit=100)) == 6


async def test_transcript_is_capped(make_store: StoreFactory) -> None:
    store = make_store(max_messages=4)
    await store.create("s1")
    for i in range(7):
        await store.append_message(message(SenderRole.CUSTOMER, f"m{i}"))
    assert [m.content for m in await store.messages("s1")] == ["m3", "m4", "m5", "m6"]


async def test_transcripts_are_per_session(store: SessionStore) -> None:
    await store.create("s1")
    await store.create("s2")
    await store.append_message(message(SenderRole.CUSTOMER, "for s1"))
    assert await store.messages("s2") == []


@pytest.mark.parametrize("status", [S.AI, S.WAITING_AGENT, S.CLOSED])
async def test_agent_messages_need_a_held_session(
    store: SessionStore, status: SessionStatus
) -> None:
    await bring_to(store, "s1", status)
    with pytest.raises(NotHolder):
        await store.append_message(message(SenderRole.AGENT, "hi", sender_id=HOLDER))
    assert await store.messages("s1") == []


async def test_agent_messages_only_from_the_holder(store: SessionStore) -> None:
    await bring_to(store, "s1", S.AGENT_ACTIVE)
    with pytest.raises(NotHolder) as caught:
        await store.append_message(message(SenderRole.AGENT, "hi", sender_id=OTHER))
    assert caught.value.holder == HOLDER
    with pytest.raises(NotHolder):
        await store.append_message(message(SenderRole.AGENT, "hi"))  # no sender id at all
    await store.append_message(message(SenderRole.AGENT, "hi", sender_id=HOLDER))
    assert [m.sender_id for m in await store.messages("s1")] == [HOLDER]


# --- concurrency --------------------------------------------------------------


async def test_concurrent_takeovers_have_exactly_one_winner(store: SessionStore) -> None:
    await bring_to(store, "s1", S.WAITING_AGENT)
    agents = [f"agent-{i}" for i in range(20)]
    results = await asyncio.gather(
        *(store.takeover("s1", agent) for agent in agents), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, Session)]
    losers = [r for r in results if isinstance(r, SessionHeldByAnother)]
    assert len(winners) == 1, results
    assert len(losers) == 19, results
    winner = winners[0].agent_id
    assert winner in agents
    assert {loser.agent_id for loser in losers} == {winner}
    assert (await store.get("s1")).agent_id == winner


async def test_concurrent_escalations_queue_once(store: SessionStore) -> None:
    await store.create("s1")
    results = await asyncio.gather(
        *(store.escalate("s1") for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, Session) for r in results) == 1
    assert sum(isinstance(r, IllegalTransition) for r in results) == 9
    assert [s.session_name for s in await store.queue()] == ["s1"]


async def test_held_by_lists_the_sessions_an_agent_holds(store: SessionStore) -> None:
    for name in ("h2", "h1", "h3"):
        await store.create(name)
        await store.escalate(name)
    await store.takeover("h1", "alice")
    await store.takeover("h2", "alice")
    await store.takeover("h3", "bob")
    assert [s.session_name for s in await store.held_by("alice")] == ["h1", "h2"]
    await store.release("h1", "alice")
    assert [s.session_name for s in await store.held_by("alice")] == ["h2"]
    await store.close("h2", "alice")
    assert await store.held_by("alice") == []
    assert [s.session_name for s in await store.held_by("bob")] == ["h3"]


async def test_read_marks_only_move_forward(store: SessionStore) -> None:
    await bring_to(store, "s1", S.AGENT_ACTIVE)
    read = await store.mark_read("s1", HOLDER, "1700000000005-0")
    assert read.agent_read_up_to == "1700000000005-0"
    # A receipt sent earlier that arrives later moves nothing.
    read = await store.mark_read("s1", HOLDER, "1700000000004-9")
    assert read.agent_read_up_to == "1700000000005-0"
    read = await store.mark_read("s1", HOLDER, "1700000000005-1")
    assert read.agent_read_up_to == "1700000000005-1"
    # The customer's mark is its own, and as monotonic.
    read = await store.mark_read("s1", None, "1700000000003-0")
    assert (read.customer_read_up_to, read.agent_read_up_to) == (
        "1700000000003-0",
        "1700000000005-1",
    )
    assert (await store.mark_read("s1", None, "999-0")).customer_read_up_to == "1700000000003-0"
    # Compared as numbers, whatever their length (past what a double holds exactly).
    longer = "17000000000030000000-0"
    assert (await store.mark_read("s1", None, longer)).customer_read_up_to == longer
    assert (await store.mark_read("s1", None, "9999999999999999999-5")).customer_read_up_to == (
        longer
    )
    assert (await store.get("s1")).customer_read_up_to == longer
