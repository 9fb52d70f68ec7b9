"""The Redis clients of a process, built one way from Settings."""

from __future__ import annotations

import redis.asyncio as aioredis
from infrastructure.config import Settings
from redis.backoff import NoBackoff
from redis.retry import Retry


def make_redis_client(settings: Settings, role: str) -> aioredis.Redis:
    """A client on a pool of its own; its connections are named ``<SERVICE_NAME>:<role>``
    in ``CLIENT LIST``.

    The pool blocks when full: a burst beyond ``REDIS_POOL_SIZE`` (the clients of a
    lost replica reconnecting together) waits for a connection instead of failing
    with ``MaxConnectionsError``. redis-py retries a command once on a connection
    error: after Redis restarts, every pooled connection is stale once, and a
    user's request should not fail for that. (The one command that must not run
    twice, the bus's publish script, does not go through a pool: see
    :class:`~infrastructure.bus.redis.pipe.CommandPipe`.)
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
        client_name=connection_name(settings, role),
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


def connection_name(settings: Settings, role: str) -> str:
    """What ``CLIENT LIST`` shows for this process's connections of ``role``."""
    return f"{settings.SERVICE_NAME}:{role}".replace(" ", "_")
