"""Every move the desk makes is in the record stream, as every other move is: the one
place that writes a move (``sessions/lib.lua``) appends its entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from infrastructure.config import Settings
from infrastructure.desk.redis_desk import RedisDesk
from infrastructure.sessions.redis_store import RedisSessionStore
from tests.integration.sessions.fakes import FakeClock

from .conftest import DESK_SETTINGS


@dataclass
class Recorded:
    """A desk and a store on one real Redis, one clock; ``client`` reads the record."""

    client: aioredis.Redis
    store: RedisSessionStore
    desk: RedisDesk
    clock: FakeClock


@pytest.fixture
async def recorded(redis_url: str) -> AsyncIterator[Recorded]:
    clock = FakeClock()
    settings = Settings(_env_file=None, REDIS_URL=redis_url, **DESK_SETTINGS)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield Recorded(
            client,
            RedisSessionStore(client, settings, clock=clock),
            RedisDesk(client, settings, "r1", clock=clock),
            clock,
        )
    finally:
        await client.aclose()


async def test_assignment_and_return_are_recorded(recorded: Recorded) -> None:
    store, desk, clock = recorded.store, recorded.desk, recorded.clock
    await store.create("s1")
    await store.escalate("s1")
    await desk.enter("agent", ["a1"])
    assert [a.agent_id for a in await desk.assign()] == ["a1"]
    await desk.leave("agent", ["a1"])
    await desk.sweep()
    clock.now += 61_000  # past AGENT_OFFLINE_GRACE_SECONDS
    assert [r.session_name for r in (await desk.sweep()).returned] == ["s1"]

    entries = await recorded.client.xrange(store.keys.record)
    assert entries is not None
    moves = [
        (f["kind"], f.get("previous"), f.get("status"), f.get("agent_id"))
        for _, f in entries
        if f is not None and f["session"] == "s1"
    ]
    assert moves == [
        ("session_created", None, None, None),
        ("status", "ai", "waiting_agent", ""),
        ("status", "waiting_agent", "agent_active", "a1"),  # the assignment
        ("status", "agent_active", "waiting_agent", "a1"),  # a1 gone: back in the queue
    ]


async def test_a_transfer_and_a_supervisors_takeover_are_recorded(recorded: Recorded) -> None:
    store, desk = recorded.store, recorded.desk
    await store.create("s1")
    await store.escalate("s1")
    await desk.enter("agent", ["a1", "b1"])
    await store.takeover("s1", "a1")
    await desk.transfer("s1", "a1", "b1", "billing")
    await desk.take_over("s1", "lead")
    entries = await recorded.client.xrange(store.keys.record)
    reasons = [
        (f["agent_id"], f["reason"])
        for _, f in entries or []
        if f is not None and f["session"] == "s1" and f.get("previous") == "agent_active"
    ]
    assert reasons == [
        ("b1", "transfer from a1: billing"),
        ("lead", "taken over from b1 by lead"),
    ]
