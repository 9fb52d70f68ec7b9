"""Typing signals on the in-memory twins: who may send one, where it goes, and that it is
never kept (a resume does not replay it)."""

from __future__ import annotations

import pytest

from infrastructure.events import Target
from infrastructure.sessions import NotHolder
from infrastructure.sessions.typing import ChatEnded, signal_typing
from tests.support.twins import published, twins


async def test_the_customer_typing_reaches_the_holding_agent_only() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        alice = await t.follow(Target.agent("alice"))
        bob = await t.follow(Target.agent("bob"))
        customer = await t.follow(Target.session("s1"))
        assert await signal_typing(t.bus, t.store, "s1", None, True) is True
        assert await published(alice) == [
            ("typing", {"session_name": "s1", "who": "customer", "agent_id": None, "typing": True})
        ]
        assert await published(bob) == []
        assert await published(customer) == []  # not echoed to the one typing


async def test_the_agent_typing_reaches_the_customer_and_a_stop_is_said() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        customer = await t.follow(Target.session("s1"))
        await signal_typing(t.bus, t.store, "s1", "alice", True)
        await signal_typing(t.bus, t.store, "s1", "alice", False)
        seen = [(k, p["who"], p["agent_id"], p["typing"]) for k, p in await published(customer)]
        assert seen == [
            ("typing", "agent", "alice", True),
            ("typing", "agent", "alice", False),
        ]


async def test_a_customer_without_an_agent_tells_nobody() -> None:
    async with twins() as t:
        await t.store.create("s1")
        broadcast = await t.follow(Target.broadcast())
        assert await signal_typing(t.bus, t.store, "s1", None, True) is False
        await t.store.escalate("s1")
        assert await signal_typing(t.bus, t.store, "s1", None, True) is False
        assert [kind for kind, _ in await published(broadcast)] == []


async def test_only_the_holder_may_signal_and_not_in_a_closed_chat() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        with pytest.raises(NotHolder):
            await signal_typing(t.bus, t.store, "s1", "bob", True)
        await t.store.close("s1", "alice")
        with pytest.raises(ChatEnded, match="closed"):
            await signal_typing(t.bus, t.store, "s1", None, True)
        with pytest.raises(ChatEnded):
            await signal_typing(t.bus, t.store, "s1", "alice", True)


async def test_a_resume_does_not_replay_typing() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        first = await t.bus.publish(Target.session("s1"), "new_message", {"n": 1})
        await signal_typing(t.bus, t.store, "s1", "alice", True)
        resumed = await t.bus.open([Target.session("s1")], last_event_id=first.token)
        assert await published(resumed) == []
