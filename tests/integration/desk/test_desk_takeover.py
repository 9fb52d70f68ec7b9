"""A supervisor's forced takeover and the active chats, in memory and on Redis alike (the
Lua script and its in-memory twin): atomic, whatever the supervisor's load; refused for a
chat not held by another; two at once: one wins; the record is told."""

from __future__ import annotations

import asyncio

import pytest

from infrastructure.sessions.models import NotTakeable, SessionStatus

from .conftest import DeskWorld

S = SessionStatus


async def held(world: DeskWorld, name: str, agent: str) -> None:
    await world.store.create(name)
    await world.store.escalate(name)
    await world.store.takeover(name, agent)


async def test_a_takeover_moves_the_chat_and_the_loads_even_past_capacity(
    world: DeskWorld,
) -> None:
    desk = world.desk
    for name in ("f1", "f2", "f3"):
        await held(world, name, "lead")  # the supervisor is full (capacity 3)
    await held(world, "s1", "ann")
    session, previous = await desk.take_over("s1", "lead")
    assert (session.status, session.agent_id, previous) == (S.AGENT_ACTIVE, "lead", "ann")
    assert (await world.store.get("s1")).agent_id == "lead"
    loads = {a.agent_id: a.chats for a in await desk.agents(["ann", "lead"])}
    assert loads == {"ann": 0, "lead": 4}
    assert await world.store.held_by("ann") == []
    assert "s1" in [s.session_name for s in await world.store.held_by("lead")]


async def test_a_takeover_of_a_chat_not_held_by_another_is_refused(world: DeskWorld) -> None:
    desk = world.desk
    await world.store.create("bot")
    await world.store.create("queued")
    await world.store.escalate("queued")
    await held(world, "mine", "lead")
    await held(world, "bobs", "bob")
    for name, why in (
        ("bot", "it is ai"),
        ("queued", "it is waiting_agent"),
        ("mine", "you hold it already"),
    ):
        with pytest.raises(NotTakeable, match=why):
            await desk.take_over(name, "lead")
    with pytest.raises(NotTakeable, match="held by 'bob' now, not 'ann'"):
        await desk.take_over("bobs", "lead", "ann")
    assert (await world.store.get("bobs")).agent_id == "bob"
    assert {a.agent_id: a.chats for a in await desk.agents(["bob", "lead"])} == {
        "bob": 1,
        "lead": 1,
    }


async def test_two_supervisors_taking_one_chat_at_once_one_wins(world: DeskWorld) -> None:
    desk = world.desk
    await held(world, "s1", "ann")
    results = await asyncio.gather(
        desk.take_over("s1", "lead", "ann"),
        desk.take_over("s1", "boss", "ann"),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], NotTakeable)
    assert (await world.store.get("s1")).agent_id == won[0][0].agent_id
    assert sum(a.chats for a in await desk.agents(["ann", "boss", "lead"])) == 1


async def test_active_chats_lists_every_held_chat_with_its_holder(world: DeskWorld) -> None:
    desk = world.desk
    assert await desk.active_chats() == []
    await held(world, "b", "bob")
    await held(world, "a", "ann")
    await world.store.create("idle")
    await world.store.create("queued")
    await world.store.escalate("queued")
    await held(world, "gone", "ann")
    await world.store.release("gone", "ann")
    chats = await desk.active_chats()
    assert [(s.session_name, s.agent_id) for s in chats] == [("a", "ann"), ("b", "bob")]
    assert all(s.last_activity_at is not None for s in chats)
