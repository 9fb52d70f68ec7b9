"""Every name of the spec exists, and RedisSseManager works as the seed uses it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from infrastructure.bootstrap import redis_sse, sse
from infrastructure.bootstrap.redis_sse import (
    RedisSseManager,
    get_redis_sse_manager,
    init_redis_sse,
    shutdown_redis_sse,
)
from infrastructure.events import build_envelope
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import (
    as_generator,
    next_envelope,
    numsub,
    process_bus,
    running_bus,
)
from tests.support.processes import async_wait_until


def test_every_name_of_the_spec_exists() -> None:
    for method in ("connect", "publish", "health_check", "close"):
        assert inspect.iscoroutinefunction(getattr(RedisSseManager, method)), method
    assert inspect.isasyncgenfunction(RedisSseManager.subscribe)
    for coroutine in (init_redis_sse, shutdown_redis_sse):
        assert inspect.iscoroutinefunction(coroutine)
    assert callable(get_redis_sse_manager)

    assert isinstance(sse.USE_REDIS_SSE, bool)
    for name in ("enqueue_sse_message", "_enqueue_to_memory"):
        assert inspect.iscoroutinefunction(getattr(sse, name)), name
    for name in ("subscribe_sse_events", "_subscribe_from_memory"):
        assert inspect.isasyncgenfunction(getattr(sse, name)), name
    for name in (
        "get_sse_queues",
        "get_or_create_sse_queue",
        "remove_sse_queue",
        "_get_redis_sse_manager",
    ):
        function = getattr(sse, name)
        assert callable(function), name
        assert not inspect.iscoroutinefunction(function), name


@pytest.fixture
async def two_managers(
    settings_factory: SettingsFactory,
) -> AsyncIterator[tuple[RedisSseManager, RedisSseManager]]:
    settings = settings_factory()
    first, second = RedisSseManager(settings), RedisSseManager(settings)
    try:
        await first.connect()
        await second.connect()
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_subscribe_is_an_async_generator_across_two_managers(
    two_managers: tuple[RedisSseManager, RedisSseManager], redis_url: str
) -> None:
    subscriber, publisher = two_managers
    assert await subscriber.health_check()
    assert await publisher.health_check()
    channel = "sse:session:seed-gen"
    observer = aioredis.Redis.from_url(redis_url)
    try:
        events = as_generator(subscriber.subscribe(channel))
        first = asyncio.create_task(next_envelope(events))

        async def subscribed() -> bool:
            return (await numsub(observer, [channel]))[channel] == 1

        await async_wait_until(subscribed, timeout=10, description="the generator subscribed")
        envelope = build_envelope("status_change", {"status": "waiting_agent"}, "seed")
        sent = await publisher.publish(channel, envelope)
        async with asyncio.timeout(5):
            received = await first
        assert received == {"id": sent.id, "epoch": sent.epoch, **envelope}

        # The seed's message form (a JSON string) works too, and the generator goes on.
        second = await publisher.publish(channel, '{"type":"new_message","payload":{"x":1}}')
        async with asyncio.timeout(5):
            received = await anext(events)
        assert received["id"] == second.id
        assert received["payload"] == {"x": 1}

        await events.aclose()
        assert not subscriber.hub.has(channel)

        async def unsubscribed() -> bool:
            return (await numsub(observer, [channel]))[channel] == 0

        await async_wait_until(unsubscribed, timeout=10, description="UNSUBSCRIBE on aclose")
    finally:
        await observer.aclose()


async def test_process_manager_init_get_shutdown(settings_factory: SettingsFactory) -> None:
    assert get_redis_sse_manager() is None, "a previous test left a process manager behind"
    settings = settings_factory()
    manager = await init_redis_sse(settings)
    assert manager is not None
    try:
        assert get_redis_sse_manager() is manager
        assert await manager.health_check()
        assert await init_redis_sse(settings) is manager
    finally:
        await shutdown_redis_sse()
    assert get_redis_sse_manager() is None
    assert not manager.connected
    assert not await manager.health_check()


async def test_the_bus_manager_is_the_process_manager(settings_factory: SettingsFactory) -> None:
    async with running_bus(settings_factory()) as bus, process_bus(bus):
        assert bus.mode == "redis"
        assert sse._get_redis_sse_manager() is bus.manager
        assert redis_sse.get_redis_sse_manager() is bus.manager
    assert redis_sse.get_redis_sse_manager() is None
