"""One Redis subscriber connection per process, however many listeners; no join race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from infrastructure.bootstrap.sse import (
    get_or_create_sse_queue,
    get_sse_queues,
    remove_sse_queue,
)
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import (
    next_events,
    numsub,
    numsub_now,
    one_event,
    payloads,
    process_bus,
    running_bus,
    subscriber_connections,
)
from tests.support.processes import async_wait_until
from tests.support.redis_server import RedisServer


@pytest.fixture
async def observer(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client of this test's own Redis, to look at it from outside."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_500_listeners_on_500_channels_hold_one_pubsub_connection(
    redis_server: RedisServer, settings_factory: SettingsFactory, observer: aioredis.Redis
) -> None:
    settings = settings_factory(REDIS_URL=redis_server.url)
    names = [f"many-{i}" for i in range(500)]
    async with running_bus(settings) as bus, process_bus(bus):
        channels = [bus.channel(name) for name in names]
        listeners = await asyncio.gather(*(bus.open([name]) for name in names))
        # Once open() returns, Redis has acknowledged the SUBSCRIBE (checked before the
        # event loop runs again).
        assert numsub_now(redis_server.url, channels) == dict.fromkeys(channels, 1)

        subscribers = await subscriber_connections(observer)
        assert len(subscribers) == 1, subscribers
        assert int(subscribers[0]["sub"]) >= 500, subscribers[0]
        # Not one connection per listener of any kind: a pool, bounded.
        assert len(await observer.client_list()) <= settings.REDIS_POOL_SIZE + 2
        assert await numsub(observer, channels) == dict.fromkeys(channels, 1)
        assert set(get_sse_queues()) == set(channels)

        # Each listener gets the events of its own channel, and only those. Published
        # all at once: they share one pipelined connection, not one each.
        await asyncio.gather(
            *(bus.publish(name, "notification", {"i": i}, "tests") for i, name in enumerate(names))
        )
        for index, listener in enumerate(listeners):
            assert payloads(await next_events(listener)) == [{"i": index}]
        by_name: dict[str, int] = {}
        for client in await observer.client_list():
            by_name[client["name"]] = by_name.get(client["name"], 0) + 1
        service = settings.SERVICE_NAME
        # One connection subscribes and publishes; the pool of commands (history
        # reads, the session store) is all the rest.
        assert by_name[f"{service}:bus"] == 1, by_name
        assert by_name.get(f"{service}:commands", 0) <= settings.REDIS_POOL_SIZE, by_name

        for listener in listeners:
            bus.close(listener)
        assert bus.hub.registry() == {}
        assert get_sse_queues() == {}

        async def all_unsubscribed() -> bool:
            return set((await numsub(observer, channels)).values()) == {0}

        await async_wait_until(
            all_unsubscribed, timeout=10, description="PUBSUB NUMSUB 0 on all 500 channels"
        )
        # Still one subscriber connection (the manager keeps it for the next listener).
        assert len(await subscriber_connections(observer)) == 1


async def test_seed_queue_functions_subscribe_and_unsubscribe(
    redis_server: RedisServer, settings_factory: SettingsFactory, observer: aioredis.Redis
) -> None:
    settings = settings_factory(REDIS_URL=redis_server.url)
    async with running_bus(settings) as bus, running_bus(settings) as other, process_bus(bus):
        channel = bus.channel("queue-1")
        queue = get_or_create_sse_queue("queue-1")
        assert get_sse_queues() == {channel: [queue]}

        async def subscribed() -> bool:
            return (await numsub(observer, [channel]))[channel] == 1

        await async_wait_until(subscribed, timeout=10, description=f"SUBSCRIBE {channel}")
        sent = await other.publish("queue-1", "notification", {"hello": 1}, "tests")
        assert (await one_event(queue)).token == sent.token

        assert remove_sse_queue("queue-1") == 1
        assert get_sse_queues() == {}
        assert queue.closed

        async def unsubscribed() -> bool:
            return (await numsub(observer, [channel]))[channel] == 0

        await async_wait_until(unsubscribed, timeout=10, description=f"UNSUBSCRIBE {channel}")


async def test_200_listeners_join_one_channel_at_once_and_all_receive(
    settings_factory: SettingsFactory, redis_url: str
) -> None:
    settings = settings_factory()
    async with running_bus(settings) as bus, running_bus(settings) as publisher:
        listeners = await asyncio.gather(*(bus.open(["crowd"]) for _ in range(200)))
        assert len(set(listeners)) == 200
        assert len(bus.hub.listeners(bus.channel("crowd"))) == 200
        # Subscribed (acknowledged by Redis) when open() returns; one SUBSCRIBE for the lot.
        channel = bus.channel("crowd")
        assert numsub_now(redis_url, [channel]) == {channel: 1}

        sent = await publisher.publish("crowd", "transfer_request", {"n": 1}, "tests")
        received = await asyncio.gather(*(one_event(listener) for listener in listeners))

    assert [event.token for event in received] == [sent.token] * 200


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 10])
async def test_listeners_joining_while_the_last_one_leaves_all_receive(
    settings_factory: SettingsFactory, redis_url: str, yields: int
) -> None:
    """The last listener leaves (UNSUBSCRIBE queued or in flight) while 200 others join."""
    settings = settings_factory()
    async with running_bus(settings) as bus, running_bus(settings) as publisher:
        first = await bus.open(["churn"])
        bus.close(first)
        for _ in range(yields):
            await asyncio.sleep(0)  # let the unsubscribe get as far as it gets: interleaving
        listeners = await asyncio.gather(*(bus.open(["churn"]) for _ in range(200)))
        channel = bus.channel("churn")
        assert numsub_now(redis_url, [channel]) == {channel: 1}

        sent = await publisher.publish("churn", "notification", {"n": 1}, "tests")
        received = await asyncio.gather(*(one_event(listener) for listener in listeners))

    assert [event.token for event in received] == [sent.token] * 200


async def test_join_and_leave_storm_on_one_channel_leaves_the_stayers_subscribed(
    settings_factory: SettingsFactory, redis_url: str
) -> None:
    settings = settings_factory()
    async with running_bus(settings) as bus, running_bus(settings) as publisher:
        stayers = []

        async def join(index: int) -> None:
            listener = await bus.open(["storm"])
            if index % 2:
                bus.close(listener)
            else:
                stayers.append(listener)

        await asyncio.gather(*(join(index) for index in range(400)))
        assert len(bus.hub.listeners(bus.channel("storm"))) == 200
        channel = bus.channel("storm")
        assert numsub_now(redis_url, [channel]) == {channel: 1}

        sent = await publisher.publish("storm", "notification", {"n": 1}, "tests")
        received = await asyncio.gather(*(one_event(listener) for listener in stayers))

    assert [event.token for event in received] == [sent.token] * 200
