"""What every desk does, in memory and on Redis alike: presence, the assignment rules
(capacity, fewest chats first, ties to the one idle longest, nobody away or gone), and the
sweep (a gone agent's chats back to the front of the queue, gone customers out of the
queue, idle chats closed)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from infrastructure.desk.models import AgentStatus, Assignment, PresenceChange
from infrastructure.sessions.models import (
    AgentAtCapacity,
    AgentUnavailable,
    ChatMessage,
    NotHolder,
    SenderRole,
    SessionStatus,
)

from .conftest import DeskWorld

S = SessionStatus


async def waiting(world: DeskWorld, *names: str) -> None:
    for name in names:
        await world.store.create(name)
        await world.store.escalate(name)


async def queue(world: DeskWorld) -> list[str]:
    return [s.session_name for s in await world.store.queue()]


async def test_an_agent_with_a_stream_is_online_and_says_away_or_offline(
    world: DeskWorld,
) -> None:
    desk = world.desk
    assert await desk.enter("agent", ["a1"]) == [PresenceChange("a1", AgentStatus.ONLINE)]
    assert await desk.enter("agent", ["a1"]) == []  # a refresh changes nothing
    assert await desk.set_status("a1", AgentStatus.AWAY) == [PresenceChange("a1", AgentStatus.AWAY)]
    assert await desk.set_status("a1", AgentStatus.OFFLINE) == [
        PresenceChange("a1", AgentStatus.OFFLINE)
    ]
    await desk.set_status("a1", AgentStatus.ONLINE)
    assert await desk.leave("agent", ["a1"]) == [PresenceChange("a1", AgentStatus.OFFLINE)]
    (a1,) = await desk.agents()
    assert (a1.agent_id, a1.status, a1.chats, a1.capacity) == ("a1", AgentStatus.OFFLINE, 0, 3)


async def test_agents_lists_the_configured_ones_too(world: DeskWorld) -> None:
    await world.desk.enter("agent", ["a1"])
    listed = await world.desk.agents(["zed"])
    assert [(a.agent_id, a.status) for a in listed] == [
        ("a1", AgentStatus.ONLINE),
        ("zed", AgentStatus.OFFLINE),
    ]


async def test_assignment_fills_the_least_loaded_up_to_capacity(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1", "a2"])
    names = [f"s{n}" for n in range(8)]
    await waiting(world, *names)
    assigned = await desk.assign()
    # 2 agents x 3: six chats, the oldest six, alternating (fewest chats first).
    assert [a.session_name for a in assigned] == names[:6]
    assert Counter(a.agent_id for a in assigned) == {"a1": 3, "a2": 3}
    assert [a.agent_id for a in assigned[:2]] == ["a1", "a2"]
    assert await queue(world) == names[6:]
    for a in assigned:
        session = await world.store.get(a.session_name)
        assert (session.status, session.agent_id) == (S.AGENT_ACTIVE, a.agent_id)
    assert await desk.assign() == []  # everyone is full
    assert [(a.agent_id, a.chats) for a in await desk.agents()] == [("a1", 3), ("a2", 3)]


async def test_a_freed_slot_takes_the_oldest_waiting_chat(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1"])
    await waiting(world, "s1", "s2", "s3", "s4", "s5")
    await desk.assign()
    await world.store.close("s2", "a1")
    assert await desk.assign() == [Assignment("s4", "a1")]
    assert await queue(world) == ["s5"]


async def test_ties_go_to_the_agent_idle_longest(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1", "a2"])
    await waiting(world, "s1")
    assert await desk.assign() == [Assignment("s1", "a1")]  # both idle since ever: by id
    await world.store.close("s1", "a1")
    world.advance(1)
    await waiting(world, "s2")
    # Both hold nothing; a2 has waited longer for a chat.
    assert await desk.assign() == [Assignment("s2", "a2")]


async def test_away_offline_and_streamless_agents_get_nothing(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["away", "off"])
    await desk.set_status("away", AgentStatus.AWAY)
    await desk.set_status("off", AgentStatus.OFFLINE)
    await desk.set_status("nostream", AgentStatus.ONLINE)
    await waiting(world, "s1")
    assert await desk.assign() == []
    await desk.set_status("away", AgentStatus.ONLINE)
    assert await desk.assign() == [Assignment("s1", "away")]


async def test_a_gone_agents_chats_return_to_the_front_after_the_grace(
    world: DeskWorld,
) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1"])
    await waiting(world, "s1", "s2")
    await desk.assign()
    await desk.leave("agent", ["a1"])
    await waiting(world, "later")
    first = await desk.sweep()
    assert first.returned == []
    world.advance(59)
    assert (await desk.sweep()).returned == []
    world.advance(2)
    swept = await desk.sweep()
    assert swept.returned == [Assignment("s1", "a1"), Assignment("s2", "a1")]
    # Ahead of the chat that was already waiting, in the order they were held.
    assert await queue(world) == ["s1", "s2", "later"]
    assert (await world.store.get("s1")).agent_id is None
    assert [(a.agent_id, a.chats) for a in await desk.agents()] == [("a1", 0)]


async def test_an_agent_back_within_the_grace_keeps_its_chats(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1"])
    await waiting(world, "s1")
    await desk.assign()
    await desk.leave("agent", ["a1"])
    await desk.sweep()
    world.advance(30)
    await desk.enter("agent", ["a1"])
    await desk.sweep()
    world.advance(120)
    assert (await desk.sweep()).returned == []
    assert (await world.store.get("s1")).agent_id == "a1"


async def test_a_crashed_replicas_agents_go_offline_by_themselves(world: DeskWorld) -> None:
    await world.replica("crashes").enter("agent", ["a1"])
    await world.desk.sweep()
    world.advance(16)  # past PRESENCE_TTL_SECONDS with no refresh
    swept = await world.desk.sweep()
    assert swept.presence == [PresenceChange("a1", AgentStatus.OFFLINE)]


async def test_a_gone_customer_leaves_the_queue_one_back_in_time_keeps_its_place(
    world: DeskWorld,
) -> None:
    desk = world.desk
    await waiting(world, "stays", "goes")
    await desk.enter("customer", ["stays", "goes"])
    await desk.leave("customer", ["stays", "goes"])
    await desk.sweep()
    world.advance(100)
    await desk.enter("customer", ["stays"])  # came back before the 120 s
    world.advance(30)
    swept = await desk.sweep()
    assert swept.abandoned == ["goes"]
    assert (await world.store.get("goes")).status is S.ABANDONED
    assert await queue(world) == ["stays"]


async def test_an_idle_agent_chat_closes_itself(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1"])
    await waiting(world, "quiet", "busy")
    await desk.assign()
    world.advance(1000)
    await world.store.mark_read("busy", "a1")  # reading is not a message
    await world.store.append_message(
        ChatMessage(session_name="busy", sender=SenderRole.CUSTOMER, content="still there?")
    )
    world.advance(801)
    swept = await desk.sweep()
    assert swept.idle_closed == [Assignment("quiet", "a1")]
    assert (await world.store.get("quiet")).status is S.CLOSED
    assert (await world.store.get("busy")).status is S.AGENT_ACTIVE


# --- transfer -------------------------------------------------------------------


async def test_a_transfer_moves_the_chat_and_the_loads(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1", "b1"])
    await waiting(world, "s1")
    await world.store.takeover("s1", "a1")
    moved = await desk.transfer("s1", "a1", "b1", "a refund question")
    assert (moved.status, moved.agent_id) == (S.AGENT_ACTIVE, "b1")
    assert (await world.store.get("s1")).agent_id == "b1"
    assert [(a.agent_id, a.chats) for a in await desk.agents()] == [("a1", 0), ("b1", 1)]
    assert [s.session_name for s in await world.store.held_by("b1")] == ["s1"]
    assert await world.store.held_by("a1") == []


async def test_a_transfer_is_refused_to_someone_not_there_or_full(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1", "away", "full"])
    await desk.set_status("away", AgentStatus.AWAY)
    await waiting(world, "s1", "f1", "f2", "f3")
    await world.store.takeover("s1", "a1")
    for name in ("f1", "f2", "f3"):
        await world.store.takeover(name, "full")
    with pytest.raises(AgentUnavailable, match="'away' is away"):
        await desk.transfer("s1", "a1", "away")
    with pytest.raises(AgentUnavailable, match="'ghost' is offline"):
        await desk.transfer("s1", "a1", "ghost")
    with pytest.raises(AgentAtCapacity, match="'full' already holds 3 chats"):
        await desk.transfer("s1", "a1", "full")
    with pytest.raises(NotHolder):
        await desk.transfer("s1", "someone", "full")
    assert (await world.store.get("s1")).agent_id == "a1"  # nothing changed


async def test_two_transfers_of_one_chat_at_once_one_wins(world: DeskWorld) -> None:
    desk = world.desk
    await desk.enter("agent", ["a1", "b1", "c1"])
    await waiting(world, "s1")
    await world.store.takeover("s1", "a1")
    results = await asyncio.gather(
        desk.transfer("s1", "a1", "b1"), desk.transfer("s1", "a1", "c1"), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], NotHolder)
    holder = (await world.store.get("s1")).agent_id
    assert holder == won[0].agent_id
    assert sum(a.chats for a in await desk.agents()) == 1
