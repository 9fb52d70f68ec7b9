"""Redis Sentinel: where the primary is, for the command pool and the bus's own connection.

``REDIS_URL=redis+sentinel://host:port[,host:port...]/<master>[/<db>]``
(:mod:`infrastructure.redis_url`). redis-py's :mod:`redis.asyncio.sentinel` serves the
command pool: its :class:`~redis.asyncio.sentinel.SentinelConnectionPool` asks the
sentinels for the primary before each new connection, and a pooled connection that meets
``READONLY`` (a demoted primary) is dropped and retried. The pool here is also a
:class:`~redis.asyncio.BlockingConnectionPool` (a burst waits instead of failing, as
with one server).

The bus's own connection (:class:`~infrastructure.bus.redis.pipe.CommandPipe`) asks
:meth:`SentinelPrimary.resolve` each time it connects, and checks ``ROLE`` in its
handshake. Following a failover (``+switch-master`` notices, and polling) is
:mod:`~infrastructure.bus.redis.topology`'s business.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from infrastructure.bus.redis.connection import RedisAddress
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings
from infrastructure.redis_url import RedisTopology
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


class RedisTopologyError(RuntimeError):
    """``REDIS_URL`` names a topology the servers contradict (a master name no sentinel
    knows): a configuration error, raised at start."""


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The Sentinel pool, blocking when full; closing it (``Redis.aclose``) also closes
    its sentinels' connections."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # a full close, not a switch of primary
            await self.sentinel_manager.aclose()


def make_sentinel(topology: RedisTopology, settings: Settings) -> Sentinel:
    """redis-py's Sentinel client on the URL's sentinels (not connected yet)."""
    timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }
    if topology.sentinel_password is not None:
        sentinel_kwargs["password"] = topology.sentinel_password
    return Sentinel(  # type: ignore[no-untyped-call]
        list(topology.hosts), sentinel_kwargs=sentinel_kwargs
    )


class SentinelPrimary:
    """Where the sentinels say the primary is, as the bus's connection needs it."""

    def __init__(self, topology: RedisTopology, settings: Settings) -> None:
        assert topology.master is not None
        self.topology = topology
        self.master = topology.master
        self._settings = settings
        self.sentinel = make_sentinel(topology, settings)

    async def resolve(self) -> RedisAddress:
        """The primary's address (a :class:`~redis.asyncio.sentinel.MasterNotFoundError`,
        a ``ConnectionError``, when no sentinel answers for it)."""
        host, port = await self.sentinel.discover_master(self.master)
        topology = self.topology
        return RedisAddress(
            host=str(host),
            port=int(port),
            username=topology.username,
            password=topology.password,
            db=topology.db,
        )

    async def check_known(self) -> None:
        """At start: raise :class:`RedisTopologyError` when sentinels answer and none
        knows the master name (sentinels that do not answer are an outage, not a
        configuration error: the bus keeps trying)."""
        answered = 0
        for host, port in self.topology.hosts:
            client = aioredis.Redis(
                host=host,
                port=port,
                socket_timeout=self._settings.REDIS_SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=self._settings.REDIS_SOCKET_TIMEOUT_SECONDS,
                password=self.topology.sentinel_password,
            )
            try:
                reply = await client.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master
                )
            except (RedisConnectionError, RedisTimeoutError, OSError):
                continue
            except ResponseError as exc:
                raise RedisTopologyError(
                    f"REDIS_URL: {host}:{port} is not a Redis Sentinel ({exc})"
                ) from None
            finally:
                await client.aclose()
            answered += 1
            if reply:
                return
        if answered:
            raise RedisTopologyError(
                f"REDIS_URL: no sentinel of {self.topology.display} knows a master named "
                f"{self.master!r} (SENTINEL GET-MASTER-ADDR-BY-NAME answered nil)"
            )

    async def listen_for_switches(self, notice: Callable[[str], None]) -> None:
        """Until cancelled: call ``notice`` with each ``+switch-master`` message of any
        sentinel about this master (a hint: the poll is what the bus relies on)."""
        tasks = [
            asyncio.create_task(self._listen_one(host, port, notice))
            for host, port in self.topology.hosts
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                await stop_task(task)

    async def _listen_one(self, host: str, port: int, notice: Callable[[str], None]) -> None:
        settings = self._settings
        delay = settings.REDIS_RECONNECT_MIN_SECONDS
        while True:
            client = aioredis.Redis(
                host=host,
                port=port,
                password=self.topology.sentinel_password,
                socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
            )
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe("+switch-master")
                    delay = settings.REDIS_RECONNECT_MIN_SECONDS
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if (
                            message.get("type") == "message"
                            and isinstance(data, bytes)
                            and data.split(b" ", 1)[0].decode() == self.master
                        ):
                            notice(data.decode())
            except (RedisError, OSError) as exc:
                logger.debug("sentinel %s:%s notices: %r", host, port, exc)
            finally:
                await client.aclose()
            # A sentinel that is away: try again later (the poll covers meanwhile).
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.REDIS_RECONNECT_MAX_SECONDS)

    async def close(self) -> None:
        await self.sentinel.aclose()


def make_sentinel_client(
    topology: RedisTopology, settings: Settings, client_name: str, retry: Any
) -> aioredis.Redis:
    """A command pool on the primary the sentinels name (see the module)."""
    assert topology.master is not None
    sentinel = make_sentinel(topology, settings)
    timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
    client: aioredis.Redis = sentinel.master_for(
        topology.master,
        connection_pool_class=BlockingSentinelPool,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry,
        health_check_interval=0,
        client_name=client_name,
        db=topology.db,
        username=topology.username,
        password=topology.password,
    )
    return client
