"""A slow consumer is cut off and resumes without loss; a fast one beside it never noticed."""

from __future__ import annotations

import asyncio

import pytest

from infrastructure.bootstrap.sse import SseBus
from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener, ListenerClosed
from tests.conftest import SettingsFactory


async def _drain(listener: Listener) -> list[Event]:
    events: list[Event] = []
    while listener.pending():
        events += [i for i in await listener.next_batch() if isinstance(i, Event)]
    return events


async def test_a_slow_consumer_is_cut_off_and_resumes_without_loss(
    settings_factory: SettingsFactory,
) -> None:
    bus = SseBus(settings_factory(SSE_QUEUE_MAXSIZE=10))
    await bus.start()
    try:
        fast = await bus.open(["s1"])
        slow = await bus.open(["s1"])
        got_fast: list[int] = []
        got_slow: list[int] = []
        last_slow: str | None = None
        # The slow one reads the first 3, then stops reading.
        for n in range(3):
            await bus.publish("s1", "n", {"n": n})
        async with asyncio.timeout(5):
            while len(got_slow) < 3:
                for event in [i for i in await slow.next_batch() if isinstance(i, Event)]:
                    got_slow.append(event.envelope()["payload"]["n"])
                    last_slow = event.token
        for n in range(3, 40):
            await bus.publish("s1", "n", {"n": n})
            async with asyncio.timeout(5):
                while len(got_fast) <= n:
                    got_fast += [e.envelope()["payload"]["n"] for e in await _next(fast)]
        assert slow.closed
        assert slow.close_reason == "slow"
        with pytest.raises(ListenerClosed, match="slow"):
            await slow.next_batch()
        assert got_fast == list(range(40))  # never noticed
        # The slow client reconnects with its last id: everything it missed, once, in order.
        assert last_slow is not None
        resumed = await bus.open(["s1"], last_event_id=last_slow)
        async with asyncio.timeout(5):
            while len(got_slow) < 40:
                got_slow += [e.envelope()["payload"]["n"] for e in await _next(resumed)]
        assert got_slow == list(range(40))
        assert bus.hub.dropped_slow == 1
    finally:
        await bus.stop()


async def _next(listener: Listener) -> list[Event]:
    return [i for i in await listener.next_batch() if isinstance(i, Event)]
