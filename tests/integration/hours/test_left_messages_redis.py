"""The inbox of messages left out of hours, on a real redis-server: shared by replicas, the
notice of an opening taken by one replica only."""

from __future__ import annotations

import redis.asyncio as aioredis

from infrastructure.hours.inbox import LeftMessage, RedisLeftMessages
from tests.conftest import SettingsFactory


async def test_left_messages_and_one_notice_per_opening(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory()
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        replica_a, replica_b = (
            RedisLeftMessages(client, settings),
            RedisLeftMessages(client, settings),
        )
        await replica_a.add(LeftMessage("s2", "Li", "li@example.com", "later", 2000))
        await replica_a.add(LeftMessage("s1", "Mei", "+86 138", "first", 1000))
        assert [m.session_name for m in await replica_b.pending()] == ["s1", "s2"]
        (first, _) = await replica_b.pending()
        assert (first.name, first.contact, first.text) == ("Mei", "+86 138", "first")
        opening = "2026-12-21T09:00:00+08:00"
        assert await replica_a.announce_once(opening)
        assert not await replica_b.announce_once(opening)
        assert await replica_b.done("s1")
        assert not await replica_a.done("s1")
        assert [m.session_name for m in await replica_a.pending()] == ["s2"]
    finally:
        await client.aclose()
