"""A listener that stops reading is dropped once its bounded queue is full; the others
are untouched."""

from __future__ import annotations

import logging

import pytest

from infrastructure.bus.listener import ListenerClosed
from tests.conftest import SettingsFactory
from tests.support.bus_helpers import one_event, running_bus

MAXSIZE = 10


@pytest.mark.parametrize("use_redis", [False, True], ids=["memory", "redis"])
async def test_listener_that_stops_reading_is_dropped_and_the_others_still_receive(
    settings_factory: SettingsFactory, use_redis: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_factory(USE_REDIS_SSE=use_redis, SSE_QUEUE_MAXSIZE=MAXSIZE)
    caplog.set_level(logging.WARNING, logger="infrastructure.bus.hub")
    async with running_bus(settings) as bus:
        channel = bus.channel("slow-1")
        stuck = await bus.open(["slow-1"])  # never reads
        readers = [await bus.open(["slow-1"]) for _ in range(3)]
        received: list[list[int]] = [[] for _ in readers]

        for n in range(MAXSIZE + 15):
            await bus.publish("slow-1", "new_message", {"n": n}, "tests")
            # The readers keep up, one event at a time (they are never 10 behind).
            for index, reader in enumerate(readers):
                received[index].append((await one_event(reader)).envelope()["payload"]["n"])
            # Full with MAXSIZE events waiting; dropped by the next one.
            assert stuck.closed is (n >= MAXSIZE), (n, stuck.close_reason)

        assert received == [list(range(MAXSIZE + 15))] * len(readers)
        assert stuck.close_reason == "slow"
        with pytest.raises(ListenerClosed) as raised:
            await stuck.next_batch()
        assert raised.value.reason == "slow"
        assert bus.hub.listeners(channel) == readers
        assert bus.hub.dropped_slow == 1
        assert "SSE_QUEUE_MAXSIZE" in caplog.text
        assert all(not reader.closed for reader in readers)
