"""Desk fixtures: one ``desk_world`` for both implementations, so every test in
``test_desk_contract.py`` runs against memory, one Redis and a Redis Cluster alike (on a
cluster every script runs in the ``{desk}`` slot: Redis refuses a script across slots), on a
clock the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from infrastructure.bus.redis.pool import make_cluster_client
from infrastructure.config import Settings
from infrastructure.desk.base import Desk
from infrastructure.desk.memory_desk import InMemoryDesk
from infrastructure.desk.redis_desk import RedisDesk
from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.sessions.redis_store import RedisSessionStore
from infrastructure.sessions.store import SessionStore
from tests.integration.sessions.fakes import FakeClock
from tests.support.cluster import RedisCluster

#: Small figures, so the tests read them off easily.
DESK_SETTINGS: dict[str, Any] = {
    "AGENT_MAX_CHATS": 3,
    "AGENT_OFFLINE_GRACE_SECONDS": 60,
    "CUSTOMER_ABANDON_SECONDS": 120,
    "SESSION_IDLE_CLOSE_SECONDS": 1800,
    "PRESENCE_TTL_SECONDS": 15,
}


@dataclass
class DeskWorld:
    store: SessionStore
    clock: FakeClock
    #: A desk as seen from a replica (its presence entries are its own).
    replica: Callable[[str], Desk]

    @property
    def desk(self) -> Desk:
        return self.replica("r1")

    def advance(self, seconds: float) -> None:
        self.clock.now += int(seconds * 1000)


@pytest.fixture(scope="session")
def desk_cluster() -> Iterator[RedisCluster]:
    """One Redis Cluster (three primaries, no replicas) for the desk's contract tests."""
    cluster = RedisCluster(replicas=0)
    try:
        yield cluster
    finally:
        cluster.stop()


def emptied(cluster: RedisCluster) -> str:
    for shard in cluster.shards():
        with contextlib.closing(cluster.node(shard.primary).client()) as client:
            client.flushall()
    return cluster.url


@pytest.fixture(params=["memory", "redis", "cluster"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[DeskWorld]:
    clock = FakeClock()
    if request.param == "memory":
        settings = Settings(_env_file=None, USE_REDIS_SSE=False, **DESK_SETTINGS)
        store = InMemorySessionStore(clock=clock)
        desks: dict[str, Desk] = {}

        def memory_replica(name: str) -> Desk:
            # One process: every "replica" is the same desk (memory mode has one).
            return desks.setdefault("one", InMemoryDesk(store, settings, name, clock=clock))

        yield DeskWorld(store, clock, memory_replica)
        return
    if request.param == "cluster":
        redis_url = emptied(request.getfixturevalue("desk_cluster"))
    else:
        redis_url = request.getfixturevalue("redis_url")
    settings = Settings(_env_file=None, REDIS_URL=redis_url, **DESK_SETTINGS)
    client: aioredis.Redis
    if request.param == "cluster":
        client = make_cluster_client(settings, "tests")
    else:
        client = aioredis.Redis.from_url(redis_url)
    try:
        redis_store = RedisSessionStore(client, settings, clock=clock)

        def redis_replica(name: str) -> Desk:
            return RedisDesk(client, settings, name, clock=clock)

        yield DeskWorld(redis_store, clock, redis_replica)
    finally:
        await client.aclose()
