"""The workbench's use cases on the in-memory twins (no Redis, no HTTP)."""

from __future__ import annotations

import pytest

from infrastructure.auth.passwords import hash_password
from infrastructure.auth.tokens import Role, verify_token
from infrastructure.desk.models import AgentStatus
from infrastructure.events import Target
from infrastructure.sessions import NotHolder, SessionConflict, SessionStatus
from products.agent_workbench.handlers.agents import LoginFailed, login
from products.agent_workbench.handlers.desk import set_status
from products.agent_workbench.handlers.sessions import (
    agent_message,
    agent_targets,
    close,
    release,
    sessions_by_status,
    takeover,
)
from tests.support.auth import make_settings
from tests.support.twins import published, twins


async def test_login_checks_the_password() -> None:
    settings = make_settings(AGENTS={"alice": hash_password("correct horse")})
    token = await login(settings, "alice", "correct horse")
    principal = verify_token(settings, token)
    assert (principal.role, principal.subject) == (Role.AGENT, "alice")
    with pytest.raises(LoginFailed):
        await login(settings, "alice", "wrong")
    with pytest.raises(LoginFailed):
        await login(settings, "nobody", "correct horse")


async def test_the_queue_and_an_agents_own_sessions() -> None:
    async with twins() as t:
        await t.waiting("a", "b", "c")
        await takeover(t.desk, "b", "alice")
        queue = await sessions_by_status(t.store, SessionStatus.WAITING_AGENT, "alice")
        assert [(s.session_name, s.queue_position) for s in queue] == [("a", 1), ("c", 2)]
        held = await sessions_by_status(t.store, SessionStatus.AGENT_ACTIVE, "alice")
        assert [s.session_name for s in held] == ["b"]
        assert await sessions_by_status(t.store, SessionStatus.AGENT_ACTIVE, "bob") == []
        with pytest.raises(ValueError, match="cannot be listed"):
            await sessions_by_status(t.store, SessionStatus.AI, "alice")


def test_an_agent_follows_its_channel_and_the_broadcast() -> None:
    assert agent_targets("alice") == [Target.agent("alice"), Target.broadcast()]


async def test_takeover_tells_the_customer_and_moves_the_queue_up() -> None:
    async with twins() as t:
        await t.waiting("s1", "s2")
        customer = await t.follow(Target.session("s1"))
        behind = await t.follow(Target.session("s2"))
        session = await takeover(t.desk, "s1", "alice")
        assert (session.status, session.agent_id) == (SessionStatus.AGENT_ACTIVE, "alice")
        ((kind, payload),) = await published(customer)
        assert (kind, payload["status"], payload["agent_id"]) == (
            "status_change",
            "agent_active",
            "alice",
        )
        (status, (kind, place)) = await published(behind)
        assert (status[0], status[1]["queue_position"]) == ("status_change", 1)
        assert (kind, place["position"]) == ("queue_position", 1)
        # Another agent loses; the holder taking it again changes nothing.
        with pytest.raises(SessionConflict):
            await takeover(t.desk, "s1", "bob")
        await takeover(t.desk, "s1", "alice")
        assert await published(customer) == []


async def test_release_gives_the_session_back_to_the_bot() -> None:
    async with twins() as t:
        await t.waiting("s1")
        await takeover(t.desk, "s1", "alice")
        customer = await t.follow(Target.session("s1"))
        with pytest.raises(SessionConflict):
            await release(t.desk, "s1", "bob")
        session = await release(t.desk, "s1", "alice")
        assert (session.status, session.agent_id) == (SessionStatus.AI, None)
        ((kind, payload),) = await published(customer)
        assert (kind, payload["status"]) == ("status_change", "ai")


async def test_close_ends_the_session() -> None:
    async with twins() as t:
        await t.waiting("s1")
        await takeover(t.desk, "s1", "alice")
        customer = await t.follow(Target.session("s1"))
        session = await close(t.desk, "s1", "alice")
        assert session.status is SessionStatus.CLOSED
        ((kind, payload),) = await published(customer)
        assert (kind, payload["status"]) == ("status_change", "closed")


async def test_only_the_holder_writes_to_a_session() -> None:
    async with twins() as t:
        await t.waiting("s1")
        await takeover(t.desk, "s1", "alice")
        customer = await t.follow(Target.session("s1"))
        message = await agent_message(t.bus, t.store, "s1", "alice", "how can I help?")
        assert (message.sender_id, message.content) == ("alice", "how can I help?")
        ((kind, payload),) = await published(customer)
        assert (kind, payload["content"]) == ("new_message", "how can I help?")
        with pytest.raises(NotHolder):
            await agent_message(t.bus, t.store, "s1", "bob", "me too")


async def test_setting_a_status_answers_that_agents_presence_among_many() -> None:
    async with twins() as t:
        await t.desk.desk.enter("agent", ["alice", "bob", "carol"])
        presence = await set_status(t.desk, "bob", AgentStatus.AWAY)
        assert (presence.agent_id, presence.status) == ("bob", AgentStatus.AWAY)
