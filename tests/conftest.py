"""Shared fixtures: real redis-server processes on free ports, and Settings that point at them.

Tests never touch a Redis they did not start (a developer's Redis on 6379 is left alone).

- ``redis_server``: a fresh :class:`RedisServer` per test, that the test may kill and restart;
  stopped at teardown.
- ``redis_server_session``: one server shared by the whole session (do not kill it).
- ``redis_url``: the shared server's URL, FLUSHALLed before the test.
- ``settings_factory``: ``settings_factory(**overrides) -> Settings`` with ``REDIS_URL`` set to
  ``redis_url`` unless overridden, and no ``.env`` file read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from infrastructure.config import Settings
from tests.support.redis_server import RedisServer

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server_session: RedisServer) -> str:
    """The shared server's URL, emptied for this test (restarted first if a test killed it)."""
    if not redis_server_session.ping():
        redis_server_session.restart(empty=True)
    client = redis.Redis.from_url(redis_server_session.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server_session.url


@pytest.fixture
def settings_factory(redis_url: str) -> SettingsFactory:
    def build(**overrides: Any) -> Settings:
        # GC_GEN0_THRESHOLD=0: an app started in this process leaves the GC alone.
        # DATABASE_URL: the record in memory unless the test gives one (issue 21).
        values: dict[str, Any] = {
            "REDIS_URL": redis_url,
            "GC_GEN0_THRESHOLD": 0,
            "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
            **overrides,
        }
        # _env_file=None: a developer's .env (say, the AUTH_SECRET `make run` wrote) never
        # leaks into a test.
        return Settings(_env_file=None, **values)

    return build
