"""The agents' list of messages left out of hours, on the in-memory twins: done once,
told to every agent (``left_message_done`` on the broadcast channel)."""

from __future__ import annotations

from infrastructure.events import Target
from infrastructure.hours.inbox import LeftMessage, left_messages_of
from products.agent_workbench.handlers.hours import LEFT_MESSAGE_DONE, done, waiting
from tests.support.twins import published, twins


async def test_done_takes_a_left_message_off_every_agents_list() -> None:
    async with twins() as t:
        await left_messages_of(t.bus).add(LeftMessage("s1", "Mei", "mei@example.com", "Hi", 1000))
        assert [m["name"] for m in await waiting(t.bus)] == ["Mei"]
        agents = await t.follow(Target.broadcast())
        assert await done(t.bus, "s1", "alice")
        assert await waiting(t.bus) == []
        assert await published(agents) == [
            (LEFT_MESSAGE_DONE, {"session_name": "s1", "agent_id": "alice"})
        ]
        # Twice (another agent was quicker): nothing to do, nothing told.
        assert not await done(t.bus, "s1", "bob")
        assert await published(agents) == []
