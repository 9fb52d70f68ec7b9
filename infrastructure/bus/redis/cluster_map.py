"""A Redis Cluster's slot map, as the bus reads it (``CLUSTER SLOTS``), and the check of
the seed nodes at start (a server not in cluster mode is a configuration error), and
what the bus keeps per primary (:class:`Node`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.bus.redis.sentinel import RedisTopologyError
from infrastructure.bus.redis.subscriber import Subscriber
from infrastructure.bus.redis.subscriptions import Subscriptions
from infrastructure.config import Settings
from infrastructure.redis_url import RedisTopology
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

SLOTS = 16384


@dataclass(frozen=True, slots=True)
class Shard:
    """One primary's part of the slot map."""

    primary: str
    replicas: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]

    @property
    def slots(self) -> int:
        return sum(end - start + 1 for start, end in self.ranges)


def parse_slots(reply: Sequence[Any]) -> list[Shard]:
    """``CLUSTER SLOTS`` as one :class:`Shard` per primary."""
    found: dict[str, tuple[list[str], list[tuple[int, int]]]] = {}
    for entry in reply:
        start, end, primary, *replicas = entry
        address = _address(primary)
        names, ranges = found.setdefault(address, ([], []))
        for replica in replicas:
            if _address(replica) not in names:
                names.append(_address(replica))
        ranges.append((int(start), int(end)))
    return [
        Shard(address, tuple(sorted(names)), tuple(sorted(ranges)))
        for address, (names, ranges) in sorted(found.items())
    ]


def _address(node: Sequence[Any]) -> str:
    host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
    return f"{host}:{int(node[1])}"


class Node:
    """One primary: its connection, subscriptions, subscriber and delivery probe."""

    def __init__(self, address: str, pipe: CommandPipe, subscriptions: Subscriptions) -> None:
        self.address = address
        self.pipe = pipe
        self.subscriptions = subscriptions
        self.subscriber: Subscriber | None = None
        self.slots: frozenset[int] = frozenset()
        #: The followed channels subscribed (or being subscribed) on this connection.
        self.carried: set[str] = set()
        self.probe_sent: float | None = None
        self.last_delivery = time.monotonic()

    # --- DeliveryWatch ---

    def connected(self) -> None:
        self.probe_sent = None
        self.last_delivery = time.monotonic()

    def probe_returned(self) -> None:
        self.probe_sent = None
        self.last_delivery = time.monotonic()

    def stalled(self, limit: float) -> bool:
        sent = self.probe_sent
        return sent is not None and time.monotonic() - sent > limit


async def read_map(
    settings: Settings, topology: RedisTopology, known: Sequence[Shard]
) -> list[Shard]:
    """``CLUSTER SLOTS`` from the first node that answers with a full map: the known
    primaries first, then their replicas, then the seeds."""
    candidates: list[str] = []
    for shard in known:
        candidates += [shard.primary, *shard.replicas]
    candidates += [f"{host}:{port}" for host, port in topology.hosts]
    error: Exception | None = None
    for address in dict.fromkeys(candidates):
        try:
            reply = await ask(settings, topology, address, "CLUSTER", "SLOTS")
        except (RedisError, OSError) as exc:
            error = exc
            continue
        shards = parse_slots(reply)
        if sum(s.slots for s in shards) == SLOTS:
            return shards
        error = RedisConnectionError(f"{address} does not see every slot served")
    raise error or RedisConnectionError("no cluster node answered")


async def ask(settings: Settings, topology: RedisTopology, address: str, *command: Any) -> Any:
    """One command to one node, on a connection of its own (the map is read rarely)."""
    host, _, port = address.rpartition(":")
    timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
    client = aioredis.Redis(
        host=host,
        port=int(port),
        username=topology.username,
        password=topology.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        return await client.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()


async def check_seeds(settings: Settings, topology: RedisTopology) -> None:
    """A seed that answers and is not in cluster mode is a configuration error."""
    for host, port in topology.hosts:
        try:
            await ask(settings, topology, f"{host}:{port}", "CLUSTER", "MYID")
        except (RedisConnectionError, RedisTimeoutError, OSError):
            continue  # away: an outage, not a configuration error
        except ResponseError as exc:
            raise RedisTopologyError(
                f"REDIS_URL: {host}:{port} is not a Redis Cluster node ({exc}): start it "
                "with cluster-enabled yes, or use redis:// for a single server"
            ) from None
