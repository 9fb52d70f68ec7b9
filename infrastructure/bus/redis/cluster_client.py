"""redis-py's asyncio ``RedisCluster``, made safe for bursts.

* A node's pool in redis-py's asyncio cluster client raises ``MaxConnectionsError`` at once
  when all ``max_connections`` are in use (its one-server pool, ``BlockingConnectionPool``,
  waits instead). On a cluster every desk command goes to the one primary of ``{desk}``, so
  a burst of more than ``REDIS_POOL_SIZE`` concurrent desk commands (the sessions a load
  test creates at once, the clients of a lost replica coming back together) would fail.
  Here the client's commands queue for one of ``max_connections`` turns first: a burst
  waits, as with one server.
* Concurrent first commands of a client not yet initialized break each other's
  connections (seen with redis-py 8.1.0: ``'NoneType' object has no attribute
  'writelines'`` and "the handler is closed" for 100 concurrent commands on a new client):
  the first command initializes it (``initialize()``, its public method) while the others
  wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio.cluster import RedisCluster


class BlockingRedisCluster(RedisCluster):
    def __init__(self, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._turns = asyncio.Semaphore(max_connections)
        self._first = asyncio.Lock()
        self._ready = False

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if not self._ready:
            async with self._first:
                if not self._ready:
                    await self.initialize()
                    self._ready = True
        async with self._turns:
            return await super().execute_command(*args, **kwargs)
