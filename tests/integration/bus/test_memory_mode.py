"""One process without Redis: ``USE_REDIS_SSE=false``, and Redis unreachable at start."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from infrastructure.bootstrap.sse import (
    SseBus,
    _enqueue_to_memory,
    _get_redis_sse_manager,
    _subscribe_from_memory,
    enqueue_sse_message,
    get_or_create_sse_queue,
    get_sse_queues,
    remove_sse_queue,
    subscribe_sse_events,
)
from infrastructure.bus.event import ORIGIN_EPOCH, ORIGIN_ID, Event
from infrastructure.config import Settings
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import (
    FAST_RECONNECT,
    as_generator,
    next_envelope,
    next_events,
    one_event,
    payloads,
    process_bus,
    running_bus,
)
from tests.support.processes import REPO_ROOT, async_wait_until, free_port
from tests.support.redis_server import RedisServer


def nowhere() -> str:
    """A Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


def memory_settings(settings_factory: SettingsFactory) -> Settings:
    # REDIS_URL points nowhere: anything that touched Redis would fail.
    return settings_factory(USE_REDIS_SSE=False, REDIS_URL=nowhere())


async def test_memory_mode_publish_subscribe_and_resume(settings_factory: SettingsFactory) -> None:
    async with running_bus(memory_settings(settings_factory)) as bus:
        assert bus.mode == "memory"
        assert bus.manager is None
        listener = await bus.open(["mem-1"])
        sent = [await bus.publish("mem-1", "new_message", {"n": n}, "tests") for n in range(3)]
        got = await next_events(listener, 3)
        assert [e.token for e in got] == [e.token for e in sent]
        assert payloads(got) == [{"n": 0}, {"n": 1}, {"n": 2}]
        bus.close(listener)

        # A client that saw event 0 reconnects: 1 and 2 from history, then live, once each.
        resumed = await bus.open(["mem-1"], last_event_id=sent[0].token)
        live = await bus.publish("mem-1", "new_message", {"n": 3}, "tests")
        got = await next_events(resumed, 3)
        assert [e.token for e in got] == [sent[1].token, sent[2].token, live.token]

        # From the origin: everything kept.
        origin = await bus.open(["mem-1"], last_event_id=f"{ORIGIN_EPOCH}.{ORIGIN_ID}")
        assert payloads(await next_events(origin, 4)) == [{"n": n} for n in range(4)]

        # Up to date: nothing to replay.
        current = await bus.open(["mem-1"], last_event_id=live.token)
        assert current.pending() == 0


async def test_memory_mode_resume_from_another_epoch_is_a_reset(
    settings_factory: SettingsFactory,
) -> None:
    async with running_bus(memory_settings(settings_factory)) as bus:
        await bus.publish("mem-2", "new_message", {"n": 0}, "tests")
        # An id from before a restart of the process: this history cannot honour it.
        listener = await bus.open(["mem-2"], last_event_id="oldepoch.1-0")
        reset = await one_event(listener)
        assert reset.type == "reset"


async def test_seed_functions_in_memory_mode(settings_factory: SettingsFactory) -> None:
    async with running_bus(memory_settings(settings_factory)) as bus, process_bus(bus):
        assert _get_redis_sse_manager() is None
        channel = bus.channel("seed-1")

        stream = as_generator(subscribe_sse_events("seed-1"))
        first = asyncio.create_task(next_envelope(stream))
        await async_wait_until(lambda: bus.hub.has(channel), description="the generator subscribed")
        event_id = await enqueue_sse_message(
            "seed-1",
            {"type": "status_change", "payload": {"session_name": "seed-1", "status": "ai"}},
        )
        async with asyncio.timeout(5):
            envelope = await first
        assert envelope["type"] == "status_change"
        assert envelope["payload"] == {"session_name": "seed-1", "status": "ai"}
        assert f"{envelope['epoch']}.{envelope['id']}" == event_id
        await stream.aclose()
        assert get_sse_queues() == {}

        from_memory = as_generator(_subscribe_from_memory("seed-1"))
        second = asyncio.create_task(next_envelope(from_memory))
        await async_wait_until(lambda: bus.hub.has(channel), description="memory subscriber")
        await _enqueue_to_memory("seed-1", {"type": "new_message", "payload": {"content": "hi"}})
        async with asyncio.timeout(5):
            assert (await second)["payload"] == {"content": "hi"}
        await from_memory.aclose()

        queue = get_or_create_sse_queue("agent:a1")
        assert list(get_sse_queues()) == [bus.channel("agent:a1")]
        await enqueue_sse_message("agent:a1", {"order": 7}, event_type="notification")
        event = await one_event(queue)
        assert event.envelope()["payload"] == {"order": 7}
        assert event.type == "notification"
        assert remove_sse_queue("agent:a1") == 1
        assert get_sse_queues() == {}


def test_memory_mode_never_imports_redis() -> None:
    """The Redis manager is loaded lazily (the seed's 延迟加载)."""
    code = (
        "import asyncio, sys\n"
        "from infrastructure.bootstrap.sse import SseBus\n"
        "from infrastructure.config import Settings\n"
        "async def main():\n"
        "    bus = SseBus(Settings(_env_file=None, USE_REDIS_SSE=False))\n"
        "    await bus.start()\n"
        "    listener = await bus.open(['s1'])\n"
        "    await bus.publish('s1', 'notification', {'a': 1})\n"
        "    assert len(await listener.next_batch()) == 1\n"
        "    await bus.stop()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def unreachable_settings(settings_factory: SettingsFactory, url: str) -> Settings:
    return settings_factory(
        REDIS_URL=url, USE_REDIS_SSE=True, **{**FAST_RECONNECT, "REDIS_SOCKET_TIMEOUT_SECONDS": 0.3}
    )


async def test_redis_unreachable_at_start_serves_local_listeners(
    settings_factory: SettingsFactory,
) -> None:
    bus = SseBus(unreachable_settings(settings_factory, nowhere()))
    async with asyncio.timeout(5):
        await bus.start()
    try:
        assert bus.mode == "redis-degraded"
        assert bus.manager is not None
        assert not await bus.manager.health_check()
        async with process_bus(bus):
            async with asyncio.timeout(5):
                listener = await bus.open(["deg-1"])
            event = await bus.publish("deg-1", "notification", {"n": 1}, "tests")
            assert event.id == ""  # not in any history yet: waits in the outbox
            assert payloads(await next_events(listener)) == [{"n": 1}]
            assert await enqueue_sse_message("deg-1", {"n": 2}) == ""
            assert payloads(await next_events(listener)) == [{"n": 2}]
            assert bus.manager.outbox_size() == 2
            assert list(get_sse_queues()) == [bus.channel("deg-1")]
    finally:
        # Redis never came: stopping must still end cleanly (the outbox is lost, logged).
        async with asyncio.timeout(10):
            await bus.stop()
    assert bus.hub.registry() == {}


async def test_redis_that_comes_up_later_gets_the_outbox(
    settings_factory: SettingsFactory,
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings = unreachable_settings(settings_factory, url)
    async with running_bus(settings) as bus:
        assert bus.mode == "redis-degraded"
        local = await bus.open(["deg-2"])
        waited = await bus.publish("deg-2", "notification", {"n": 1}, "tests")
        assert waited.id == ""
        assert payloads(await next_events(local)) == [{"n": 1}]

        server = RedisServer(port=port)
        server.start()
        try:
            await async_wait_until(lambda: bus.mode == "redis", timeout=10, description="redis")
            assert bus.manager is not None
            manager = bus.manager
            await async_wait_until(lambda: manager.outbox_size() == 0, timeout=10)
            # Now in Redis history: another process resuming from the origin gets it.
            async with running_bus(settings) as other:
                resumed = await other.open(["deg-2"], last_event_id=f"{ORIGIN_EPOCH}.{ORIGIN_ID}")
                assert payloads(await next_events(resumed)) == [{"n": 1}]
            # The local listener did not get it a second time (at most its new id); live
            # events flow.
            live = await bus.publish("deg-2", "notification", {"n": 2}, "tests")
            positions: list[Event] = []
            assert [e.token for e in await next_events(local, id_only=positions)] == [live.token]
            assert [e.envelope()["payload"] for e in positions] in ([], [{"n": 1}])
        finally:
            await bus.stop()
            server.stop()
