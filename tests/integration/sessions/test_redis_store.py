"""What only the Redis store has: its key layout, TTLs, Lua scripts, several
connections racing, and a server that goes away. The shared behaviour is in
``test_store_contract.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from infrastructure.config import Settings
from infrastructure.sessions.models import (
    ChatMessage,
    SenderRole,
    Session,
    SessionHeldByAnother,
    SessionStatus,
)
from infrastructure.sessions.redis_store import RedisSessionStore
from tests.support.redis_server import RedisServer

from .fakes import CLOCK_START_MS, FakeClock

TTL = 3600


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(_env_file=None, REDIS_URL=redis_url, SESSION_TTL_SECONDS=TTL)


@pytest.fixture
async def store(redis_client: aioredis.Redis, settings: Settings) -> RedisSessionStore:
    return RedisSessionStore(redis_client, settings, clock=FakeClock())


async def test_key_layout(store: RedisSessionStore, redis_client: aioredis.Redis) -> None:
    await store.create("s1")
    await store.escalate("s1", "refund")
    await store.append_message(
        ChatMessage(session_name="s1", sender=SenderRole.CUSTOMER, content="hi")
    )

    keys = sorted(await redis_client.keys("*"))
    assert keys == [
        b"sse:store:msgs:{s1}",
        b"sse:store:queue:waiting",
        b"sse:store:record",  # the record stream (issue 21)
        b"sse:store:sess:{s1}",
    ]
    assert await redis_client.type("sse:store:sess:{s1}") == b"hash"
    assert await redis_client.type("sse:store:msgs:{s1}") == b"stream"
    assert await redis_client.hgetall("sse:store:sess:{s1}") == {
        b"status": b"waiting_agent",
        b"created_at": str(CLOCK_START_MS + 1).encode(),
        b"updated_at": str(CLOCK_START_MS + 2).encode(),
        b"waiting_since": str(CLOCK_START_MS + 2).encode(),
        b"escalation_reason": b"refund",
        # what the queue row shows, and what the agent has not read yet
        b"first_message": b"hi",
        b"unread": b"1",
        b"last_activity_at": str(CLOCK_START_MS + 3).encode(),
    }
    assert await redis_client.zrange("sse:store:queue:waiting", 0, -1, withscores=True) == [
        (b"s1", float(CLOCK_START_MS + 2))
    ]


async def test_prefix_comes_from_settings(redis_client: aioredis.Redis, redis_url: str) -> None:
    settings = Settings(_env_file=None, REDIS_URL=redis_url, REDIS_SSE_CHANNEL_PREFIX="cs:")
    store = RedisSessionStore(redis_client, settings)
    await store.create("s1")
    assert sorted(await redis_client.keys("*")) == [b"cs:store:record", b"cs:store:sess:{s1}"]


def test_one_session_hashes_to_one_cluster_slot(store: RedisSessionStore) -> None:
    # the client library's own CRC16 slot function: what a Redis Cluster client would compute
    slots = {
        key_slot(key.encode()) for key in (store.keys.session("s1"), store.keys.transcript("s1"))
    }
    assert len(slots) == 1
    assert key_slot(store.keys.session("s1").encode()) == key_slot(b"s1")


async def test_every_write_refreshes_the_ttl(
    store: RedisSessionStore, redis_client: aioredis.Redis
) -> None:
    sess, msgs = store.keys.session("s1"), store.keys.transcript("s1")
    await store.create("s1")
    assert 0 < await redis_client.ttl(sess) <= TTL

    async def shorten() -> None:
        for key in (sess, msgs):
            await redis_client.expire(key, 10)

    await store.append_message(
        ChatMessage(session_name="s1", sender=SenderRole.CUSTOMER, content="hi")
    )
    writes: list[Callable[[], Awaitable[object]]] = [
        lambda: store.escalate("s1"),
        lambda: store.takeover("s1", "a1"),
        lambda: store.append_message(
            ChatMessage(session_name="s1", sender=SenderRole.AGENT, sender_id="a1", content="hey")
        ),
        lambda: store.release("s1", "a1"),
        lambda: store.close("s1"),
    ]
    for write in writes:
        await shorten()
        await write()
        assert await redis_client.ttl(sess) > 10
        assert await redis_client.ttl(msgs) > 10


async def test_a_failed_transition_writes_nothing(
    store: RedisSessionStore, redis_client: aioredis.Redis
) -> None:
    await store.create("s1")
    before = await redis_client.hgetall(store.keys.session("s1"))
    with pytest.raises(Exception, match="cannot move"):
        await store.release("s1", "a1")
    assert await redis_client.hgetall(store.keys.session("s1")) == before
    assert await redis_client.exists(store.keys.queue) == 0


async def test_queue_drops_sessions_that_expired(
    store: RedisSessionStore, redis_client: aioredis.Redis
) -> None:
    for name in ("gone", "kept"):
        await store.create(name)
        await store.escalate(name)
    await redis_client.delete(store.keys.session("gone"))  # as if its TTL ran out

    assert [s.session_name for s in await store.queue()] == ["kept"]
    assert await redis_client.zrange(store.keys.queue, 0, -1) == [b"kept"]
    assert await store.queue_position("kept") == 1


async def test_works_with_a_decoding_client(redis_url: str, settings: Settings) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisSessionStore(client, settings)
        await store.create("s1")
        await store.escalate("s1", "原因")
        session = await store.takeover("s1", "a1")
        assert session.escalation_reason == "原因"
        stored = await store.append_message(
            ChatMessage(session_name="s1", sender=SenderRole.AGENT, sender_id="a1", content="您好")
        )
        assert await store.messages("s1") == [stored]
        await store.release("s1", "a1")
        await store.escalate("s1")
        assert [s.session_name for s in await store.queue()] == ["s1"]
    finally:
        await client.aclose()


async def test_scripts_survive_a_script_flush(
    store: RedisSessionStore, redis_client: aioredis.Redis
) -> None:
    await store.create("s1")
    await redis_client.script_flush()  # e.g. after a failover to a fresh replica
    assert (await store.escalate("s1")).status is SessionStatus.WAITING_AGENT


async def test_twenty_agents_on_twenty_connections_one_winner(
    redis_url: str, settings: Settings
) -> None:
    """Each agent as its own replica would be: its own client, its own connection."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(20)]
    try:
        stores = [RedisSessionStore(c, settings) for c in clients]
        await stores[0].create("s1")
        await stores[0].escalate("s1")
        # connect every client first, so that the takeovers themselves race
        await asyncio.gather(*(c.ping() for c in clients))

        results = await asyncio.gather(
            *(s.takeover("s1", f"agent-{i}") for i, s in enumerate(stores)),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, Session)]
        assert len(winners) == 1, results
        assert sum(isinstance(r, SessionHeldByAnother) for r in results) == 19, results
        assert (await stores[0].get("s1")).agent_id == winners[0].agent_id
        assert await stores[0].queue() == []
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


@pytest.fixture
async def own_server_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        yield client
    finally:
        await client.aclose()


async def test_ping_is_false_while_redis_is_down(
    redis_server: RedisServer, own_server_client: aioredis.Redis
) -> None:
    settings = Settings(_env_file=None, REDIS_URL=redis_server.url)
    store = RedisSessionStore(own_server_client, settings)
    assert await store.ping() is True
    redis_server.kill()
    assert await store.ping() is False
    redis_server.restart(empty=True)
    assert await store.ping() is True
