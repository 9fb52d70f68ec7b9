"""The bus's one connection: subscriptions and commands (publishes, reads) share it.

A command that ends the connection (here: no reply within the timeout) takes the
subscriptions with it; the subscriber must notice, subscribe again on the next
connection and catch up, so that its listeners miss nothing.
"""

from __future__ import annotations

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.conftest import SettingsFactory
from tests.support.bus_helpers import (
    FAST_RECONNECT,
    next_events,
    payloads,
    running_bus,
    subscriber_connections,
)
from tests.support.processes import async_wait_until
from tests.support.redis_server import RedisServer


async def test_a_command_timing_out_restarts_the_subscriber_and_nothing_is_missed(
    redis_server: RedisServer, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(
        REDIS_URL=redis_server.url, **{**FAST_RECONNECT, "REDIS_SOCKET_TIMEOUT_SECONDS": 0.5}
    )
    async with running_bus(settings) as here, running_bus(settings) as there:
        assert here.manager is not None
        manager = here.manager
        listener = await here.open(["shared-1"])
        before = manager.reconnects

        # BLPOP holds the connection for 3 s: past the timeout, the pipe drops it.
        with pytest.raises(RedisTimeoutError):
            await manager.pipe.execute("BLPOP", "never-filled", 3)
        during = await there.publish("shared-1", "notification", {"n": 1}, "tests")

        await async_wait_until(
            lambda: manager.reconnects > before and here.mode == "redis",
            timeout=10,
            description="the subscriber started over on a new connection",
        )
        after = await there.publish("shared-1", "notification", {"n": 2}, "tests")
        mine = await here.publish("shared-1", "notification", {"n": 3}, "tests")

        received = await next_events(listener, 3)
        assert payloads(received) == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert [e.token for e in received] == [during.token, after.token, mine.token]
        # Still one connection of this process subscribed, the new one.
        names = [c["name"] for c in await subscriber_connections(manager.redis)]
        assert names.count(f"{settings.SERVICE_NAME}:bus") == 2  # here's and there's


async def test_a_message_during_the_catch_up_waits_for_it(
    redis_server: RedisServer, settings_factory: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushes are handled as they are read, also while the subscriber starts over. One
    that comes between the SUBSCRIBE's confirmation and the end of the catch-up from
    history must wait for it: delivered first, it would make the older events the
    catch-up brings look already seen (and drop them)."""
    settings = settings_factory(REDIS_URL=redis_server.url, **FAST_RECONNECT)
    async with running_bus(settings) as here, running_bus(settings) as there:
        assert here.manager is not None
        manager = here.manager
        listener = await here.open(["shared-2"])
        link = await manager.pipe.link()
        steps: list[str] = []

        real_link, real_history_after = manager.pipe.link, manager.history.after

        async def link_after_a_miss(on_push: object = None) -> object:
            # Subscribed nowhere now: this event is only in history.
            steps.append("missed")
            await there.publish("shared-2", "notification", {"n": 1}, "tests")
            return await real_link(on_push)  # type: ignore[arg-type]

        async def history_after_a_live_one(channel: str, epoch: str, event_id: str) -> object:
            # Subscribed again: this one comes live, before the catch-up has read history.
            steps.append("live")
            await there.publish("shared-2", "notification", {"n": 2}, "tests")
            # Sent after the publish completed, so answered after Redis pushed it here:
            # once the PING is answered, the push has been handled.
            await manager.pipe.execute("PING")
            return await real_history_after(channel, epoch, event_id)

        monkeypatch.setattr(manager.pipe, "link", link_after_a_miss)
        monkeypatch.setattr(manager.history, "after", history_after_a_live_one)
        manager.pipe.drop(link, ConnectionError("cut by the test"))

        received = await next_events(listener, 2)
        assert steps == ["missed", "live"]
        assert payloads(received) == [{"n": 1}, {"n": 2}]


async def test_the_bus_speaks_resp3_whatever_the_url_asks(
    redis_server: RedisServer, settings_factory: SettingsFactory
) -> None:
    """RESP2 would forbid commands on a subscribed connection and deliver messages as
    plain replies: the bus's connection asks for RESP3 even when REDIS_URL says
    ``protocol=2`` (the rest of the process keeps what the URL asks)."""
    settings = settings_factory(REDIS_URL=f"{redis_server.url}?protocol=2", **FAST_RECONNECT)
    async with running_bus(settings) as bus:
        assert bus.manager is not None
        listener = await bus.open(["resp2-url"])
        sent = await bus.publish("resp2-url", "notification", {"n": 1}, "tests")
        received = await next_events(listener, 1)
        assert [e.token for e in received] == [sent.token]
        assert bus.mode == "redis"
        assert bus.manager.outbox_size() == 0
