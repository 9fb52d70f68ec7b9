"""The Redis clients of a process, built one way from Settings."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infrastructure.config import Settings


def make_redis_client(settings: Settings, retries: int) -> aioredis.Redis:
    """A client on a pool of its own.

    The pool blocks when full: a burst beyond ``REDIS_POOL_SIZE`` (the clients of a
    lost replica reconnecting together) waits for a connection instead of failing
    with ``MaxConnectionsError``. ``retries`` is how often redis-py itself retries a
    command on a connection error: 0 where the caller decides (the bus), 1 where a
    stale pooled connection after a Redis restart should not fail a user's request
    (the session store).
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), retries),
        health_check_interval=0,
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
