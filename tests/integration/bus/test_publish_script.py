"""The publish call on a real Redis: the packed EVALSHA writes history and publishes,
and a Redis that lost the script (restart, SCRIPT FLUSH) gets it by EVAL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from infrastructure.bootstrap.redis_sse import RedisSseManager
from infrastructure.bus.redis.publish_script import PUBLISH_SHA
from infrastructure.events import build_envelope, dumps
from tests.conftest import SettingsFactory


@pytest.fixture
async def manager(settings_factory: SettingsFactory) -> AsyncIterator[RedisSseManager]:
    bus = RedisSseManager(settings_factory(SSE_HISTORY_LENGTH=50))
    try:
        await bus.connect()
        yield bus
    finally:
        await bus.close()


async def test_a_publish_survives_a_flushed_script_cache(
    manager: RedisSseManager, redis_url: str
) -> None:
    channel = "sse:session:script-flush"
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await admin.script_flush()
        assert await admin.script_exists(PUBLISH_SHA) == [False]
        bodies = [dumps(build_envelope("notification", {"n": n}, "tests")) for n in range(2)]
        first = await manager.publish(channel, bodies[0])  # EVALSHA fails: EVAL loads it
        assert await admin.script_exists(PUBLISH_SHA) == [True]
        second = await manager.publish(channel, bodies[1])  # EVALSHA again
        assert first.id
        assert second.id
        assert first.epoch == second.epoch
        entries: Any = await admin.xrange(manager.keys.stream(channel))
        assert [(entry_id.decode(), fields[b"e"]) for entry_id, fields in entries] == [
            (first.id, bodies[0]),
            (second.id, bodies[1]),
        ]
        # The history's limits went with the call: it expires.
        assert await admin.pttl(manager.keys.stream(channel)) > 0
    finally:
        await admin.aclose()
