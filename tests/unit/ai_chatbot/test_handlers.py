"""The chatbot's use cases on the in-memory twins (no Redis, no HTTP)."""

from __future__ import annotations

import pytest

from infrastructure.auth.tokens import Role, verify_token
from infrastructure.events import Target
from infrastructure.sessions import SessionConflict, SessionStatus
from products.ai_chatbot.handlers.manual import manual_escalate, manual_message, notify_callback
from products.ai_chatbot.handlers.messages import customer_message
from products.ai_chatbot.handlers.sessions import create_session, session_status
from products.ai_chatbot.responders.faq import FaqResponder
from tests.support.auth import make_settings
from tests.support.twins import published, twins


async def test_create_session_gives_a_customer_token_for_it() -> None:
    settings = make_settings(USE_REDIS_SSE=False)
    async with twins() as t:
        session, token = await create_session(t.store, settings, None)
        assert session.status is SessionStatus.AI
        principal = verify_token(settings, token)
        assert (principal.role, principal.subject) == (Role.CUSTOMER, session.session_name)
        named, _ = await create_session(t.store, settings, "mine")
        assert named.session_name == "mine"


async def test_session_status_tells_the_place_in_the_queue() -> None:
    async with twins() as t:
        for name in ("first", "second"):
            await t.store.create(name)
            await manual_escalate(t.desk, name)
        status = await session_status(t.store, "second")
        assert (status.status, status.queue_position) == (SessionStatus.WAITING_AGENT, 2)


async def test_the_bot_answers_while_the_session_is_ai() -> None:
    async with twins() as t:
        await t.store.create("s1")
        session = await t.follow(Target.session("s1"))
        result = await customer_message(t.desk, FaqResponder(), "s1", "hello")
        assert result.status is SessionStatus.AI
        assert result.reply is not None
        assert not result.escalated
        events = await published(session)
        kinds = [(kind, payload.get("sender"), payload.get("partial")) for kind, payload in events]
        assert kinds[0] == ("new_message", "customer", None)
        assert kinds[-1] == ("new_message", "bot", None)
        assert all(kind == ("new_message", "bot", True) for kind in kinds[1:-1])
        assert [m.content for m in await t.store.messages("s1")] == ["hello", result.reply.content]


async def test_asking_for_a_human_escalates_and_tells_every_agent() -> None:
    async with twins() as t:
        await t.store.create("s1")
        session = await t.follow(Target.session("s1"))
        agents = await t.follow(Target.broadcast())
        result = await customer_message(t.desk, FaqResponder(), "s1", "转人工")
        assert result.escalated
        assert result.reply is None
        assert (await t.store.get("s1")).status is SessionStatus.WAITING_AGENT
        # Then the queue tells everyone waiting their place (the desk's queue_changed).
        assert [kind for kind, _ in await published(session)] == [
            "new_message",
            "status_change",
            "status_change",
            "queue_position",
        ]
        (kind, payload), (moved, queue) = await published(agents)
        assert kind == "transfer_request"
        assert payload["session_name"] == "s1"
        assert payload["queue_position"] == 1
        assert (moved, queue["waiting"]) == ("queue_changed", ["s1"])


async def test_a_message_while_an_agent_holds_the_session_goes_to_the_agent() -> None:
    async with twins() as t:
        await t.store.create("s1")
        await t.store.escalate("s1")
        await t.store.takeover("s1", "alice")
        alice = await t.follow(Target.agent("alice"))
        result = await customer_message(t.desk, FaqResponder(), "s1", "still there?")
        assert result.status is SessionStatus.AGENT_ACTIVE
        assert result.reply is None  # the bot stays quiet
        ((kind, payload),) = await published(alice)
        assert (kind, payload["content"]) == ("new_message", "still there?")


async def test_manual_message_is_stored_and_published() -> None:
    async with twins() as t:
        await t.store.create("s1")
        session = await t.follow(Target.session("s1"))
        message = await manual_message(t.bus, t.store, "s1", "hi")
        assert message.content == "hi"
        assert [kind for kind, _ in await published(session)] == ["new_message"]


async def test_escalating_twice_is_a_conflict() -> None:
    async with twins() as t:
        await t.store.create("s1")
        await manual_escalate(t.desk, "s1", reason="help")
        with pytest.raises(SessionConflict):
            await manual_escalate(t.desk, "s1")


async def test_notify_callback_publishes_like_any_change() -> None:
    async with twins() as t:
        await t.store.create("s1")
        session = await t.follow(Target.session("s1"))
        agents = await t.follow(Target.broadcast())
        changed = await notify_callback(t.desk, "s1", SessionStatus.WAITING_AGENT)
        assert changed.status is SessionStatus.WAITING_AGENT
        (kind, payload), *moved = await published(session)
        assert (kind, payload["status"]) == ("status_change", "waiting_agent")
        assert [kind for kind, _ in moved] == ["status_change", "queue_position"]
        assert [kind for kind, _ in await published(agents)] == [
            "transfer_request",
            "queue_changed",
        ]
        await notify_callback(t.desk, "s1", SessionStatus.AGENT_ACTIVE, "bob")
        assert (await t.store.get("s1")).agent_id == "bob"
