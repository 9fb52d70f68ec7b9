"""Redis killed (SIGKILL) and restarted under a waiting listener.

The manager reconnects by itself, resubscribes, catches up from history, and writes
its outbox (events published here during the outage, which local listeners had at once).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infrastructure.bootstrap.sse import SseBus
from infrastructure.bus.event import Event
from infrastructure.config import Settings
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import (
    FAST_RECONNECT,
    next_events,
    one_event,
    payloads,
    running_bus,
)
from tests.support.processes import async_wait_until
from tests.support.redis_server import RedisServer


def _degraded(bus: SseBus) -> bool:
    return bus.mode == "redis-degraded"


def _up(bus: SseBus) -> bool:
    return bus.mode == "redis"


async def test_listener_receives_after_redis_is_killed_and_restarted(
    redis_server: RedisServer, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(REDIS_URL=redis_server.url, **FAST_RECONNECT)
    async with running_bus(settings) as bus:
        listener = await bus.open(["outage-1"])
        waiting = asyncio.create_task(next_events(listener, 1, timeout=60))

        redis_server.kill()
        await async_wait_until(lambda: _degraded(bus), timeout=10, description="degraded mode")
        assert not waiting.done()
        redis_server.restart()
        await async_wait_until(lambda: _up(bus), timeout=10, description="reconnected")

        assert not listener.closed
        assert bus.manager is not None
        assert bus.manager.reconnects >= 1
        async with running_bus(settings) as other:
            sent = await other.publish("outage-1", "notification", {"after": "restart"}, "tests")
        async with asyncio.timeout(10):
            received = await waiting

    assert [event.token for event in received] == [sent.token]
    assert payloads(received) == [{"after": "restart"}]


async def test_event_published_during_the_outage_reaches_local_at_once_and_others_later(
    redis_server: RedisServer, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(REDIS_URL=redis_server.url, **FAST_RECONNECT)
    async with running_bus(settings) as here, running_bus(settings) as there:
        mine = await here.open(["outage-2"])
        theirs = await there.open(["outage-2"])
        await here.publish("outage-2", "new_message", {"n": 0}, "tests")
        assert payloads(await next_events(mine)) == [{"n": 0}]
        assert payloads(await next_events(theirs)) == [{"n": 0}]

        redis_server.kill()
        await async_wait_until(lambda: _degraded(here), timeout=10, description="degraded")
        during = await here.publish("outage-2", "new_message", {"n": 1}, "tests")
        # Local listeners have it at once (no id yet: it is not in history).
        assert during.id == ""
        assert mine.pending() == 1
        assert payloads(await next_events(mine)) == [{"n": 1}]
        assert here.manager is not None
        assert here.manager.outbox_size() == 1

        redis_server.restart()
        # The other bus gets it once Redis is back, from the outbox, with a real id.
        received = await one_event(theirs, timeout=15)
        assert received.envelope()["payload"] == {"n": 1}
        assert received.id != ""
        await async_wait_until(
            lambda: here.manager is not None and here.manager.outbox_size() == 0,
            timeout=10,
            description="the outbox written to Redis",
        )

        # Both buses carry on; the local listener does not get the outbox event twice
        # (at most its id, once Redis gave it one, so that a resume does not replay it).
        await async_wait_until(lambda: _up(here) and _up(there), timeout=10)
        after = await there.publish("outage-2", "new_message", {"n": 2}, "tests")
        positions: list[Event] = []
        assert [e.token for e in await next_events(mine, id_only=positions)] == [after.token]
        assert [e.token for e in positions] in ([], [received.token])
        assert [e.token for e in await next_events(theirs)] == [after.token]


def _publish_from_another_loop(settings: Settings, target: str, payload: dict[str, Any]) -> str:
    """Publish with a fresh bus on an event loop of its own (in a worker thread)."""

    async def publish() -> str:
        async with running_bus(settings) as bus:
            assert bus.mode == "redis"
            return (await bus.publish(target, "transfer_request", payload, "elsewhere")).token

    return asyncio.run(publish())


@pytest.mark.parametrize("seen_before", [True, False], ids=["seen-before", "idle-channel"])
async def test_event_published_while_this_process_resubscribes_is_not_lost(
    redis_server: RedisServer, settings_factory: SettingsFactory, seen_before: bool
) -> None:
    """Redis is back, another process publishes, and only then this process resubscribes.

    What was published in between is in the channel's history: the manager must catch the
    listener up from it, whether or not it had seen an event on that channel before the
    outage (an agent's broadcast channel is often idle).
    """
    settings = settings_factory(REDIS_URL=redis_server.url, **FAST_RECONNECT)
    async with running_bus(settings) as bus:
        listener = await bus.open(["broadcast"])
        if seen_before:
            await bus.publish("broadcast", "notification", {"warm": "up"}, "tests")
            assert payloads(await next_events(listener)) == [{"warm": "up"}]
        redis_server.kill()
        await async_wait_until(lambda: _degraded(bus), timeout=10, description="degraded")

        # Blocking calls on purpose: this event loop does not run until they return, so
        # this process cannot resubscribe before the other one has published.
        redis_server.restart()
        with ThreadPoolExecutor(max_workers=1) as pool:
            token = pool.submit(
                _publish_from_another_loop, settings, "broadcast", {"session_name": "s9"}
            ).result(timeout=30)

        await async_wait_until(lambda: _up(bus), timeout=10, description="reconnected")
        received = await next_events(listener, 1, timeout=5)

    assert [event.token for event in received] == [token]
