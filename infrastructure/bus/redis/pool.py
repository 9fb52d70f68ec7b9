"""The Redis clients of a process, built one way from Settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import redis.asyncio as aioredis
from infrastructure.config import Settings
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from infrastructure.bus.redis.pipe import CommandPipe
    from infrastructure.bus.redis.sentinel import SentinelPrimary


def make_redis_client(settings: Settings, role: str) -> aioredis.Redis:
    """A client on a pool of its own; its connections are named ``<SERVICE_NAME>:<role>``
    in ``CLIENT LIST``.

    The pool blocks when full: a burst beyond ``REDIS_POOL_SIZE`` (the clients of a
    lost replica reconnecting together) waits for a connection instead of failing
    with ``MaxConnectionsError``. redis-py retries a command once on a connection
    error: after Redis restarts, every pooled connection is stale once, and a
    user's request should not fail for that. (The one command that must not run
    twice, the bus's publish script, does not go through a pool: see
    :class:`~infrastructure.bus.redis.pipe.CommandPipe`.) With Sentinel
    (``redis+sentinel://``), the pool connects to the primary the sentinels name
    (:mod:`~infrastructure.bus.redis.sentinel`).
    """
    retry = Retry(NoBackoff(), 1)
    topology = settings.redis_topology
    if topology.kind == "cluster":
        return make_cluster_client(settings, connection_name(settings, role))
    if topology.kind == "sentinel":
        from infrastructure.bus.redis.sentinel import make_sentinel_client

        return make_sentinel_client(topology, settings, connection_name(settings, role), retry)
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        retry=retry,
        health_check_interval=0,
        client_name=connection_name(settings, role),
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


def make_cluster_client(settings: Settings, client_name: str) -> aioredis.Redis:
    """redis-py's asyncio ``RedisCluster`` on the URL's seed nodes: it routes each command
    (the store's and the desk's scripts: their keys share the ``{desk}`` tag) to its
    slot's primary and follows ``MOVED`` and failovers itself. It offers the command
    methods of ``Redis`` that the store, the desk and the replays use, hence the cast
    (it is not a subclass)."""
    from infrastructure.bus.redis.cluster_client import BlockingRedisCluster
    from redis.asyncio.cluster import ClusterNode

    topology = settings.redis_topology
    timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
    client = BlockingRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in topology.hosts],
        username=topology.username,
        password=topology.password,
        max_connections=settings.REDIS_POOL_SIZE,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        client_name=client_name,
        # A replica that is not promoted yet, a slot on its way: not a full map for a
        # moment; the client serves the slots it knows.
        require_full_coverage=False,
    )
    return cast(aioredis.Redis, client)


def connection_name(settings: Settings, role: str) -> str:
    """What ``CLIENT LIST`` shows for this process's connections of ``role``."""
    return f"{settings.SERVICE_NAME}:{role}".replace(" ", "_")


def make_bus_pipe(settings: Settings) -> tuple[CommandPipe | None, SentinelPrimary | None]:
    """The bus's own connection (:class:`CommandPipe`) and, with Sentinel, what tells
    it where the primary is (asked at each connect). On a Redis Cluster, none: the bus
    makes one per primary (:mod:`~infrastructure.bus.redis.cluster`)."""
    from infrastructure.bus.redis.pipe import CommandPipe

    primary = None
    topology = settings.redis_topology
    if topology.kind == "cluster":
        return None, None
    if topology.kind == "sentinel":
        from infrastructure.bus.redis.sentinel import SentinelPrimary

        primary = SentinelPrimary(topology, settings)
    pipe = CommandPipe(
        settings.REDIS_URL,
        settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        connection_name(settings, "bus"),
        resolver=primary.resolve if primary is not None else None,
    )
    return pipe, primary
