"""Session-store fixtures: one ``make_store`` for both implementations, so that every
behavioural test in ``test_store_contract.py`` runs against memory and Redis alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.config import Settings
from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.sessions.redis_store import RedisSessionStore
from infrastructure.sessions.store import SessionStore

from .fakes import FakeClock, StoreFactory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def redis_settings(redis_url: str) -> Settings:
    return Settings(_env_file=None, REDIS_URL=redis_url)


@pytest.fixture
async def command_pipe(redis_url: str) -> AsyncIterator[CommandPipe]:
    pipe = CommandPipe(redis_url, timeout=2.0)
    try:
        yield pipe
    finally:
        await pipe.close()


# "redis-pipe": as the services build it, reading sessions on the bus's pipelined connection.
@pytest.fixture(params=["memory", "redis", "redis-pipe"])
def make_store(request: pytest.FixtureRequest, clock: FakeClock) -> StoreFactory:
    """``make_store(**options) -> SessionStore`` of the implementation under test."""
    if request.param == "memory":

        def build_memory(**options: Any) -> SessionStore:
            return InMemorySessionStore(clock=clock, **options)

        return build_memory

    client: aioredis.Redis = request.getfixturevalue("redis_client")
    settings: Settings = request.getfixturevalue("redis_settings")

    reads: CommandPipe | None = None
    if request.param == "redis-pipe":
        reads = request.getfixturevalue("command_pipe")

    def build_redis(**options: Any) -> SessionStore:
        return RedisSessionStore(client, settings, clock=clock, reads=reads, **options)

    return build_redis


@pytest.fixture
def store(make_store: StoreFactory) -> SessionStore:
    return make_store()
