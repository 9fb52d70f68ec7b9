"""Sentinel failover on real servers: one primary, one replica, three sentinels.

A follower (a bus of its own, as another process would have) reads a session while the
service publishes at a steady rate; the primary is SIGKILLed. Every acknowledged event
(one with an id) reaches the follower once, in order; ``/readyz`` is not ready during the
switch and ready after; every event acknowledged before the kill is on the new primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener
from infrastructure.bus.redis.sentinel import RedisTopologyError
from infrastructure.container import build_container
from infrastructure.web.fast_path import ServiceApp
from products.ai_chatbot.app import create_app
from tests.support.auth import failover_settings
from tests.support.processes import async_wait_until
from tests.support.sentinel import SentinelDeployment

CHANNEL = "sse:session:failover"
RATE_HZ = 40


@pytest.fixture
async def http(sentinel: SentinelDeployment) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceApp]]:
    app: ServiceApp = create_app(failover_settings(sentinel.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client, app


@pytest.mark.timeout(90)
async def test_a_killed_primary_loses_no_acknowledged_event(
    sentinel: SentinelDeployment, http: tuple[httpx.AsyncClient, ServiceApp]
) -> None:
    client, app = http
    manager = app.state.bus.manager
    assert manager is not None
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["topology"]["primary"] == f"127.0.0.1:{sentinel.primary.port}"
    assert ready.json()["topology"]["required_acks"] == 1

    follower = build_container(failover_settings(sentinel.url))
    await follower.start()
    assert follower.manager is not None
    listener = Listener([CHANNEL], 10_000, owner=follower.manager.hub)
    await follower.manager.attach(listener)
    received: list[int] = []

    async def follow() -> None:
        while True:
            for item in await listener.next_batch():
                if isinstance(item, Event) and not item.id_only:
                    received.append(orjson.loads(item.body)["n"])

    acknowledged: list[int] = []
    before_kill: list[tuple[int, str]] = []
    readiness: list[tuple[float, int]] = []
    killed_at: float | None = None

    async def probe_readiness() -> None:
        while True:
            readiness.append((time.monotonic(), (await client.get("/readyz")).status_code))
            await asyncio.sleep(0.05)  # the probe's own pace, not a wait for a condition

    follow_task = asyncio.create_task(follow())
    readiness_task = asyncio.create_task(probe_readiness())
    try:
        n = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n += 1
            event = await manager.publish(CHANNEL, {"n": n})
            if event.id:
                acknowledged.append(n)
                if killed_at is None:
                    before_kill.append((n, event.id))
            if n == 40:
                sentinel.primary.kill()
                killed_at = time.monotonic()
            # After the switch: enough acknowledged events on the new primary, then stop.
            if (
                killed_at is not None
                and manager.topology.failovers
                and len(acknowledged) > (len(before_kill) + 40)
            ):
                break
            await asyncio.sleep(1 / RATE_HZ)  # the publishing rate
        assert manager.topology.failovers == 1, manager.topology.describe()

        with contextlib.suppress(AssertionError):
            await async_wait_until(
                lambda: set(acknowledged) <= set(received), timeout=20, description="caught up"
            )
        missing = sorted(set(acknowledged) - set(received))
        assert not missing, f"acknowledged events never delivered: {missing}"
    finally:
        follow_task.cancel()
        readiness_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow_task
        with contextlib.suppress(asyncio.CancelledError):
            await readiness_task
        follower.manager.detach(listener)
        await follower.close()

    # Each acknowledged event once, in publishing order.
    seen = [x for x in received if x in set(acknowledged)]
    assert seen == acknowledged, (seen, acknowledged)
    # /readyz: not ready during the switch, ready after.
    assert killed_at is not None
    after_kill = [code for at, code in readiness if at > killed_at]
    assert 503 in after_kill, readiness
    assert after_kill[-1] == 200
    final = await client.get("/readyz")
    assert final.status_code == 200, final.text
    assert final.json()["topology"]["primary"] == f"127.0.0.1:{sentinel.replica.port}"
    assert sentinel.primary_port() == sentinel.replica.port
    # Every event acknowledged before the kill is on the new primary.
    with contextlib.closing(sentinel.replica.client()) as new_primary:
        entries: Any = new_primary.xrange(manager.keys.stream(CHANNEL))
    on_new = {entry_id.decode() for entry_id, _ in entries}
    lost = [n for n, event_id in before_kill if event_id not in on_new]
    assert not lost, f"acknowledged before the kill, missing on the new primary: {lost}"
    metrics = (await client.get("/metrics")).text
    assert "redis_failovers_total" in metrics


async def test_a_master_name_the_sentinels_do_not_know_is_an_error_at_start(
    sentinel: SentinelDeployment,
) -> None:
    url = sentinel.url.replace("/mymaster/", "/nosuchmaster/")
    container = build_container(failover_settings(url))
    try:
        with pytest.raises(RedisTopologyError, match=r"no sentinel .* knows a master named"):
            await container.start()
    finally:
        await container.close()


def test_a_sentinel_url_with_a_plain_server_as_sentinel_is_an_error_at_start(
    sentinel: SentinelDeployment,
) -> None:
    # Not a sentinel: SENTINEL is an unknown command there.
    url = f"redis+sentinel://127.0.0.1:{sentinel.replica.port}/mymaster"
    container = build_container(failover_settings(url))

    async def start() -> None:
        try:
            await container.start()
        finally:
            await container.close()

    with pytest.raises(RedisTopologyError, match="is not a Redis Sentinel"):
        asyncio.run(start())
