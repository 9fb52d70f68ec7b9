"""Resume with a ``Last-Event-ID`` cursor, on the real Redis (in-process buses).

What the HTTP layer hands to ``SseBus.open``: the seam between history and live events,
multi-channel cursors, and ``reset`` when the history cannot cover the gap.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener
from infrastructure.events import Target
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import FAST_RECONNECT, running_bus


async def drain(listener: Listener, until: int, timeout: float = 10.0) -> list[Event]:
    """Events from ``listener`` until one with payload n == ``until`` (or a reset) arrived."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        while True:
            for item in await listener.next_batch():
                if isinstance(item, Event):
                    events.append(item)
                    envelope = item.envelope()
                    if envelope["type"] == "n" and envelope["payload"]["n"] == until:
                        return events


def ns(events: list[Event]) -> list[int]:
    return [e.envelope()["payload"]["n"] for e in events if e.type == "n"]


async def test_resuming_while_publishing_is_exact_at_the_seam(
    settings_factory: SettingsFactory,
) -> None:
    """Many resumes, each racing a publisher on another bus: no gap, no duplicate."""
    settings = settings_factory(**FAST_RECONNECT)
    target = Target.session("seam")
    async with running_bus(settings) as publisher_bus, running_bus(settings) as bus:
        total = 1_500
        first = await bus.open([target])
        got: list[Event] = []

        async def publish_all() -> None:
            for n in range(total):
                await publisher_bus.publish(target, "n", {"n": n})

        task = asyncio.create_task(publish_all())
        listener = first
        try:
            while not got or ns(got)[-1] < total - 1:
                # Read a little, then drop and resume from the last id seen.
                batch = await listener.next_batch()
                got += [i for i in batch if isinstance(i, Event)]
                if got and len(got) % 3 == 0:
                    bus.close(listener)
                    last = got[-1]
                    listener = await bus.open([target], last.token)
        finally:
            bus.close(listener)
            await task
        assert not [e for e in got if e.type == "reset"]
        assert ns(got) == list(range(total))


async def test_a_multi_channel_cursor_resumes_each_channel(
    settings_factory: SettingsFactory,
) -> None:
    """An agent's stream (its channel + broadcast) resumed with one comma-joined cursor.

    Exposes a bug (see the report): ``Listener.replay`` for the second channel filters the
    whole buffer with every channel's floor, and so drops the first channel's replayed events
    (each is at or below its own channel's floor): n=3 is silently lost.
    """
    settings = settings_factory(**FAST_RECONNECT)
    targets = [Target.agent("a1"), Target.broadcast()]
    async with running_bus(settings) as bus:
        listener = await bus.open(targets)
        await bus.publish(targets[0], "n", {"n": 0})
        await bus.publish(targets[1], "n", {"n": 1})
        events = await drain(listener, 1)
        # What the SSE response writes in its id: line.
        listener.encode(events)
        cursor = ",".join(f"{e}.{i}" for e, i in listener.cursor)
        bus.close(listener)
        await bus.publish(targets[1], "n", {"n": 2})
        await bus.publish(targets[0], "n", {"n": 3})
        resumed = await bus.open(targets, cursor)
        await bus.publish(targets[0], "n", {"n": 4})
        try:
            again = await drain(resumed, 4)
        finally:
            bus.close(resumed)
        # Each channel's missed events, none already seen: replay is per channel.
        assert sorted(ns(again)) == [2, 3, 4], f"got {ns(again)}: the agent channel's replay"
        assert ns(again)[-1] == 4
        assert not [e for e in again if e.type == "reset"]


async def test_a_cursor_at_the_newest_event_replays_nothing(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(**FAST_RECONNECT, SSE_HISTORY_LENGTH=50)
    target = Target.session("newest")
    async with running_bus(settings) as bus:
        last = None
        for n in range(20):
            last = await bus.publish(target, "n", {"n": n})
        assert last is not None
        assert last.id
        resumed = await bus.open([target], last.token)
        await bus.publish(target, "n", {"n": 20})
        try:
            events = await drain(resumed, 20)
        finally:
            bus.close(resumed)
        assert [e.type for e in events] == ["n"]
        assert ns(events) == [20]


async def test_a_cursor_from_before_a_flushall_gets_reset(
    settings_factory: SettingsFactory, redis_url: str
) -> None:
    settings = settings_factory(**FAST_RECONNECT)
    target = Target.session("flushed")
    async with running_bus(settings) as bus:
        seen = await bus.publish(target, "n", {"n": 0})
        client = aioredis.Redis.from_url(redis_url)
        try:
            await client.flushall()
        finally:
            await client.aclose()
        await bus.publish(target, "n", {"n": 1})  # a new Stream, with a new epoch
        resumed = await bus.open([target], seen.token)
        try:
            await bus.publish(target, "n", {"n": 2})
            events = await drain(resumed, 2)
        finally:
            bus.close(resumed)
        assert events[0].type == "reset", [e.type for e in events]
        assert ns(events) == [2]


async def test_a_cursor_older_than_the_trimmed_history_gets_reset(
    settings_factory: SettingsFactory,
) -> None:
    """XADD MAXLEN ~ trimmed the events after the cursor: a reset, never a silent gap.

    Exposes a bug (see the report): Redis 7 does not update ``max-deleted-entry-id`` when
    XADD MAXLEN trims, so ``history_after`` believes nothing was trimmed and replays what is
    left (the last ~60 of 500) as if it were everything.
    """
    settings = settings_factory(**FAST_RECONNECT, SSE_HISTORY_LENGTH=50)
    target = Target.session("trimmed")
    async with running_bus(settings) as bus:
        first = await bus.publish(target, "n", {"n": 0})
        for n in range(1, 500):
            await bus.publish(target, "n", {"n": n})
        resumed = await bus.open([target], first.token)
        await bus.publish(target, "n", {"n": 500})
        try:
            events = await drain(resumed, 500)
        finally:
            bus.close(resumed)
        assert events[0].type == "reset", (
            f"no reset: replayed n={ns(events)[:3]}... ({len(events)} events) after a gap"
        )
        assert ns(events) == [500]


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis", "memory"])
async def test_a_stream_opened_without_cursor_never_replays_what_came_before(
    settings_factory: SettingsFactory, use_redis: bool
) -> None:
    """An agent's stream (its channel + broadcast) opened fresh, then resumed with its id.

    The broadcast already had events before the stream opened; the stream then only saw
    an event on the agent channel. Its id must name the broadcast's real position, so the
    resume replays what came after the first connection, not the broadcast's whole history
    (the "8 new with 0 waiting" badge after a short drop).
    """
    settings = settings_factory(**FAST_RECONNECT, USE_REDIS_SSE=use_redis)
    targets = [Target.agent("fresh"), Target.broadcast()]
    async with running_bus(settings) as bus:
        for n in range(5):
            await bus.publish(targets[1], "n", {"n": -1 - n})  # old transfer requests
        listener = await bus.open(targets)
        await bus.publish(targets[0], "n", {"n": 0})
        events = await drain(listener, 0)
        listener.encode(events)
        cursor = ",".join(f"{e}.{i}" for e, i in listener.cursor)
        assert ".0-0" not in cursor, f"the id names the origin of a channel: {cursor}"
        bus.close(listener)
        await bus.publish(targets[1], "n", {"n": 1})
        resumed = await bus.open(targets, cursor)
        await bus.publish(targets[0], "n", {"n": 2})
        try:
            again = await drain(resumed, 2)
        finally:
            bus.close(resumed)
        assert ns(again) == [1, 2]
        assert not [e for e in again if e.type == "reset"]
