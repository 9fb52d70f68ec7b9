"""Ephemeral events (typing): delivered to whoever listens now, across processes' buses,
never kept — a resume with ``Last-Event-ID`` does not replay them and the channel's
history Stream does not grow. In memory mode and on a real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from infrastructure.bus.api import SseBus
from infrastructure.config import Settings
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import next_events, payloads, running_bus
from tests.support.cluster import RedisCluster
from tests.support.processes import free_port


def _settings(settings_factory: SettingsFactory, mode: str) -> Settings:
    if mode == "memory":
        return settings_factory(USE_REDIS_SSE=False, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    return settings_factory()


async def _round(publisher: SseBus, follower: SseBus, channel: str) -> None:
    """real 1, typing, real 2 -> a live follower gets all three, in order; the typing one
    has no id. A resume from real 1 gets real 2 only."""
    live = await follower.open([channel])
    first = await publisher.publish(channel, "new_message", {"n": 1}, "tests")
    await publisher.publish_ephemeral(channel, "typing", {"who": "agent"}, "tests")
    await publisher.publish(channel, "new_message", {"n": 2}, "tests")

    got = await next_events(live, 3)
    assert [e.type for e in got] == ["new_message", "typing", "new_message"]
    assert payloads(got)[1] == {"who": "agent"}
    assert (got[1].id, got[1].epoch) == ("", "")
    assert b"id:" not in got[1].frame  # the browser keeps its last real id
    follower.close(live)

    resumed = await follower.open([channel], last_event_id=first.token)
    replayed = await next_events(resumed, 1)
    assert [(e.type, payloads([e])[0]) for e in replayed] == [("new_message", {"n": 2})]
    # Nothing else queued behind it: the typing event is not in the history.
    more = await publisher.publish(channel, "new_message", {"n": 3}, "tests")
    after = await next_events(resumed, 1)
    assert [e.token for e in after] == [more.token]
    follower.close(resumed)


async def test_memory_mode_does_not_keep_an_ephemeral_event(
    settings_factory: SettingsFactory,
) -> None:
    async with running_bus(_settings(settings_factory, "memory")) as bus:
        assert bus.mode == "memory"
        await _round(bus, bus, "eph-mem")


async def test_across_two_buses_on_redis_an_ephemeral_event_is_delivered_never_kept(
    settings_factory: SettingsFactory, redis_url: str
) -> None:
    settings = _settings(settings_factory, "redis")
    async with running_bus(settings) as publisher, running_bus(settings) as follower:
        assert publisher.mode == follower.mode == "redis"
        await _round(publisher, follower, "eph-redis")
        client = aioredis.Redis.from_url(redis_url)
        try:
            stream = f"{settings.REDIS_SSE_CHANNEL_PREFIX}"
            keys = [k async for k in client.scan_iter(match=f"{stream}*eph-redis*")]
            streams = [k for k in keys if await client.type(k) == b"stream"]
            assert len(streams) == 1, keys
            assert await client.xlen(streams[0]) == 3  # the three real events, no typing
        finally:
            await client.aclose()


@pytest.mark.parametrize("mode", ["memory", "redis"])
async def test_an_ephemeral_event_to_nobody_is_dropped_quietly(
    settings_factory: SettingsFactory, mode: str
) -> None:
    async with running_bus(_settings(settings_factory, mode)) as bus:
        await bus.publish_ephemeral("eph-nobody", "typing", {"who": "customer"}, "tests")
        listener = await bus.open(["eph-nobody"])
        real = await bus.publish("eph-nobody", "new_message", {"n": 1}, "tests")
        assert [e.token for e in await next_events(listener, 1)] == [real.token]
        bus.close(listener)


async def test_on_a_cluster_an_ephemeral_event_goes_by_spublish_and_is_never_kept(
    settings_factory: SettingsFactory,
) -> None:
    cluster = RedisCluster(replicas=0)
    try:
        settings = settings_factory(REDIS_URL=cluster.url)
        async with running_bus(settings) as publisher, running_bus(settings) as follower:
            assert publisher.mode == follower.mode == "redis"
            await _round(publisher, follower, "eph-cluster")
    finally:
        cluster.stop()
