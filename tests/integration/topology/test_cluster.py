"""The bus on a real Redis Cluster: three primaries with a replica each.

A follower (a bus of its own, as another process would have) listens to 50 session
channels while a publisher publishes to them at a steady rate; meanwhile (1) a slot range
holding some of the channels is resharded to another primary and (2) a primary is
SIGKILLed and its replica promoted. Every acknowledged event (one with an id) reaches the
follower once, in order, per channel; nothing published is missing; each process holds
one bus connection per primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, cast

import orjson
import pytest

from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener
from infrastructure.bus.redis.manager import RedisSseManager
from infrastructure.bus.redis.pool import connection_name
from infrastructure.bus.redis.sentinel import RedisTopologyError
from infrastructure.container import Container, build_container
from tests.support.auth import failover_settings
from tests.support.cluster import RedisCluster, slot_of
from tests.support.processes import async_wait_until
from tests.support.redis_server import RedisServer

CHANNELS = [f"sse:session:c{i}" for i in range(50)]
#: Each phase waits for acknowledged events of its own (how many of all are acknowledged
#: depends on the machine's load: a replica slow to answer WAIT leaves an event in the outbox).
ACKED_PER_PHASE = 50
#: Slots moved at once at most (a slot at a time, as redis-cli does).
WINDOW = 400


def manager_of(container: Container) -> RedisSseManager:
    assert container.manager is not None
    return container.manager


def bus_connections(cluster: RedisCluster, name: str) -> dict[int, int]:
    """Per primary: the connections named ``name`` (``CLIENT LIST``)."""
    counts = {}
    for shard in cluster.shards():
        with contextlib.closing(cluster.node(shard.primary).client()) as client:
            clients: Any = cast(Any, client).client_list()
        counts[shard.primary] = sum(1 for c in clients if c.get("name") == name)
    return counts


def densest_window(cluster: RedisCluster) -> tuple[range, int, int]:
    """A slot range of at most ``WINDOW`` slots, on one primary, holding the most channels;
    that primary and another one to move it to."""
    best: tuple[int, range, int] = (0, range(0), 0)
    for shard in cluster.shards():
        slots = sorted(
            slot_of(ch) for ch in CHANNELS if any(a <= slot_of(ch) <= b for a, b in shard.ranges)
        )
        for i, first in enumerate(slots):
            inside = [s for s in slots[i:] if s < first + WINDOW]
            held = range(first, first + WINDOW)
            if len(inside) > best[0] and all(
                any(a <= s <= b for a, b in shard.ranges) for s in (held[0], held[-1])
            ):
                best = (len(inside), range(first, inside[-1] + 1), shard.primary)
    count, window, source = best
    assert count >= 2, "no slot range holds two channels"
    target = next(s.primary for s in cluster.shards() if s.primary != source)
    return window, source, target


@pytest.mark.timeout(240)
async def test_resharding_and_a_failover_lose_no_acknowledged_event(
    cluster: RedisCluster,
) -> None:
    settings = failover_settings(cluster.url)
    publisher, follower = build_container(settings), build_container(settings)
    await publisher.start()
    await follower.start()
    pub, fol = manager_of(publisher), manager_of(follower)
    listeners = {ch: Listener([ch], 100_000, owner=fol.hub) for ch in CHANNELS}
    received: dict[str, list[int]] = {ch: [] for ch in CHANNELS}
    published: dict[str, list[int]] = {ch: [] for ch in CHANNELS}
    acknowledged: dict[str, list[int]] = {ch: [] for ch in CHANNELS}
    stop = asyncio.Event()

    async def follow(channel: str, listener: Listener) -> None:
        while True:
            for item in await listener.next_batch():
                if isinstance(item, Event) and not item.id_only:
                    received[channel].append(orjson.loads(item.body)["n"])

    async def publish() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            channel = CHANNELS[n % len(CHANNELS)]
            event = await pub.publish(channel, {"n": n})
            published[channel].append(n)
            if event.id:
                acknowledged[channel].append(n)
            await asyncio.sleep(0.004)  # the publishing rate

    def count() -> int:
        return sum(len(v) for v in published.values())

    def acked_count() -> int:
        return sum(len(v) for v in acknowledged.values())

    health: list[tuple[float, bool]] = []

    async def probe_health() -> None:  # what /readyz asks
        while True:
            health.append((time.monotonic(), await fol.health_check()))
            await asyncio.sleep(0.05)  # the probe's own pace, not a wait for a condition

    tasks: list[asyncio.Task[None]] = []
    try:
        for channel, listener in listeners.items():
            await fol.attach(listener)
            tasks.append(asyncio.create_task(follow(channel, listener)))
        assert pub.connected
        assert fol.connected
        # One bus connection per primary and process (publisher + follower), not one
        # per channel.
        name = connection_name(settings, "bus")
        assert set(bus_connections(cluster, name).values()) == {2}
        topology = fol.topology.describe()
        assert topology["kind"] == "cluster", topology
        assert len(topology["shards"]) == 3, topology
        assert all(s["replicas"] for s in topology["shards"]), topology

        tasks.append(asyncio.create_task(publish()))
        tasks.append(asyncio.create_task(probe_health()))
        await async_wait_until(
            lambda: count() >= 300 and acked_count() >= ACKED_PER_PHASE,
            timeout=30,
            description="300 published, some acknowledged",
        )

        # (1) A slot range holding some of the channels moves to another primary.
        window, source, target = densest_window(cluster)
        moved = [ch for ch in CHANNELS if slot_of(ch) in window]
        await asyncio.to_thread(cluster.reshard, window, target)
        mark, acked_mark = count(), acked_count()
        await async_wait_until(
            lambda: (
                count() >= mark + 300
                and acked_count() >= acked_mark + ACKED_PER_PHASE
                and fol.cluster is not None
                and all(
                    fol.cluster.node_for(ch) is fol.cluster.nodes.get(f"127.0.0.1:{target}")
                    for ch in moved
                )
            ),
            timeout=30,
            description="the follower follows the moved slots",
        )

        # (2) The primary of a channel is SIGKILLed; its replica takes over.
        victim = cluster.primary_of(CHANNELS[0])
        killed_at = time.monotonic()
        promoted = await asyncio.to_thread(cluster.kill_primary, victim)
        mark, acked_mark = count(), acked_count()
        await async_wait_until(
            lambda: (
                count() >= mark + 300
                and acked_count() >= acked_mark + ACKED_PER_PHASE
                and fol.connected
                and pub.connected
                and pub.outbox_size() == 0
            ),
            timeout=60,
            description="publishing goes on after the failover, the outbox is empty",
        )
        stop.set()
        await async_wait_until(lambda: health[-1][1], timeout=10, description="ready again")
        await async_wait_until(
            lambda: all(set(published[ch]) <= set(received[ch]) for ch in CHANNELS),
            timeout=30,
            description="every published event reached the follower",
        )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for listener in listeners.values():
            fol.detach(listener)
        await follower.close()
        await publisher.close()

    # Not ready while a primary is away, ready once its replica serves its slots.
    assert False in [ok for at, ok in health if at > killed_at], health
    assert health[-1][1]
    for channel in CHANNELS:
        acked = set(acknowledged[channel])
        seen = [n for n in received[channel] if n in acked]
        assert seen == acknowledged[channel], (channel, seen, acknowledged[channel])
    assert fol.cluster is not None
    assert pub.cluster is not None
    assert fol.cluster.failovers == 1
    assert pub.cluster.failovers == 1
    assert fol.cluster.map_changes >= 2
    assert fol.resubscribes >= 2
    assert fol.catch_ups >= 2
    assert f"127.0.0.1:{promoted}" in {s.primary for s in fol.cluster.shards}
    assert f"127.0.0.1:{victim}" not in fol.cluster.nodes
    assert source != target


async def test_a_seed_that_is_not_a_cluster_node_is_an_error_at_start() -> None:
    with RedisServer() as plain:
        container = build_container(failover_settings(f"redis+cluster://127.0.0.1:{plain.port}"))
        try:
            with pytest.raises(RedisTopologyError, match="is not a Redis Cluster node"):
                await container.start()
        finally:
            await container.close()
