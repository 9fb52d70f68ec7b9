"""The bus on a Redis Cluster: one connection per primary, shard channels, the slot map.

``REDIS_URL=redis+cluster://[[user]:password@]host:port[,host:port...]`` names seed
nodes. :class:`ClusterNodes` reads the slot map (``CLUSTER SLOTS``) from them and keeps,
per primary, one :class:`~infrastructure.bus.redis.pipe.CommandPipe` (publishes: the
publish script ``SPUBLISH``-es, see :mod:`~.publish_script`) and one
:class:`~infrastructure.bus.redis.subscriber.Subscriber` (``SSUBSCRIBE``, the channels of
that primary's slots grouped one slot per command). Not one per channel, nor per
browser: a process holds as many bus connections as the cluster has primaries.

The map is read again every ``REDIS_TOPOLOGY_CHECK_SECONDS`` and at once when a
subscriber loses its connection, when the server ends a shard channel's subscription by
itself (``sunsubscribe``: its slot migrated, or the primary was demoted) and when a
publish meets ``MOVED``/``ASK``/``CLUSTERDOWN``. When it changed, every subscriber whose
slots changed starts over on the right node (resubscribe, catch-up from the Streams: the
same code as a reconnect to one server), a primary that is gone is dropped (a failover,
counted) and a new one gets its connection. Publishes that fail meanwhile wait in the
outbox and go out, in order, once the map is right: nothing is lost.

Each connection's delivery is probed like one server's: an ``SPUBLISH`` on a control
channel of its own (a name hashed to a slot of that primary) that its subscription must
bring back within ``REDIS_DELIVERY_STALL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from infrastructure.bus.redis.cluster_map import SLOTS, Node, Shard, check_seeds, read_map
from infrastructure.bus.redis.connection import RedisAddress
from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.bus.redis.positions import ChannelPositions
from infrastructure.bus.redis.recovery import Recovery
from infrastructure.bus.redis.subscriber import Subscriber, SubscriberOwner
from infrastructure.bus.redis.subscriptions import Subscriptions
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings
from infrastructure.redis_url import RedisTopology
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger(__name__)


class ClusterNodes:
    """The bus's side of a Redis Cluster (see the module). It is also the hub's
    :class:`~infrastructure.bus.hub.ChannelWatcher`: a channel's (S)SUBSCRIBE goes to
    the subscriptions of its slot's primary."""

    def __init__(
        self,
        owner: SubscriberOwner,
        channels: Callable[[], list[str]],
        settings: Settings,
        topology: RedisTopology,
        positions: ChannelPositions,
        recovery: Recovery,
        control_prefix: str,
        connection_name: str,
    ) -> None:
        self._owner = owner
        self._channels = channels
        self._settings = settings
        self._topology = topology
        self._positions = positions
        self._recovery = recovery
        self._control_prefix = control_prefix
        self._name = connection_name
        self.shards: list[Shard] = []
        #: Slot -> the address of its primary ('' while unknown).
        self._owners: list[str] = [""] * SLOTS
        self.nodes: dict[str, Node] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        # Counters for /metrics and /readyz (those of subscribers gone with their node
        # are kept in ``_retired``).
        self.failovers = 0
        self.map_changes = 0
        self.stalls = 0
        self._retired = [0, 0, 0]
        self.last_error: str | None = None

    # --- where a channel is ---

    def node_for(self, channel: str) -> Node | None:
        return self.nodes.get(self._owners[key_slot(channel.encode())])

    def pipe_for(self, channel: str) -> CommandPipe:
        """The connection to the primary of ``channel``'s slot (the publisher's)."""
        node = self.node_for(channel)
        if node is None:
            raise RedisConnectionError(f"no primary known for the slot of {channel}")
        return node.pipe

    def channels_of(self, subscriber: Subscriber) -> list[str]:
        node = next((n for n in self.nodes.values() if n.subscriber is subscriber), None)
        if node is None:
            return []
        channels = self._carried_by(node.address)
        node.carried = set(channels)
        return channels

    def _carried_by(self, address: str) -> list[str]:
        owners = self._owners
        return [ch for ch in self._channels() if owners[key_slot(ch.encode())] == address]

    def subscriber_for(self, channel: str) -> Subscriber | None:
        node = self.node_for(channel)
        return node.subscriber if node is not None else None

    def required_acks(self, channel: str) -> int:
        configured = self._settings.REDIS_MIN_REPLICAS_ACK
        if configured is not None:
            return configured
        address = self._owners[key_slot(channel.encode())]
        for shard in self.shards:
            if shard.primary == address:
                return 1 if shard.replicas else 0
        return 0

    @property
    def connected(self) -> bool:
        nodes = self.nodes.values()
        return bool(self.nodes) and all(
            n.subscriber is not None and n.subscriber.connected for n in nodes
        )

    @property
    def stalled(self) -> bool:
        limit = self._settings.REDIS_DELIVERY_STALL_SECONDS
        return any(node.stalled(limit) for node in self.nodes.values())

    def subscribers(self) -> list[Subscriber]:
        return [n.subscriber for n in self.nodes.values() if n.subscriber is not None]

    def totals(self) -> tuple[int, int, int]:
        """Reconnects, resubscribes and catch-ups of every subscriber, past and present."""
        reconnects, resubscribes, catch_ups = self._retired
        for sub in self.subscribers():
            reconnects += sub.reconnects
            resubscribes += sub.resubscribes
            catch_ups += sub.catch_ups
        return reconnects, resubscribes, catch_ups

    # --- ChannelWatcher ---

    def channel_opened(self, channel: str) -> None:
        node = self.node_for(channel)
        if node is None:
            self._positions.follow(channel)  # subscribed when its primary is known
        else:
            node.carried.add(channel)
            node.subscriptions.channel_opened(channel)

    def channel_closed(self, channel: str) -> None:
        node = self.node_for(channel)
        if node is None:
            self._positions.forget(channel)
        else:
            node.carried.discard(channel)
            node.subscriptions.channel_closed(channel)

    async def wait_subscribed(self, channels: Sequence[str]) -> None:
        by_node: dict[str, list[str]] = {}
        for channel in channels:
            node = self.node_for(channel)
            if node is not None:
                by_node.setdefault(node.address, []).append(channel)
        for address, group in by_node.items():
            await self.nodes[address].subscriptions.wait_subscribed(group)

    # --- life cycle ---

    async def start(self) -> None:
        """Check the seeds (a server not in cluster mode is an error at start), read the
        map if the cluster answers, connect, and watch."""
        await check_seeds(self._settings, self._topology)
        with contextlib.suppress(RedisError, OSError):
            await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="redis-cluster-watch")

    async def wait_connected(self, seconds: float) -> None:
        waits = [asyncio.create_task(s.up.wait()) for s in self.subscribers()]
        if waits:
            await asyncio.wait(waits, timeout=seconds)
        for wait in waits:
            wait.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)
        for address in list(self.nodes):
            await self._retire(address)
        for retiring in list(self._retiring):
            await retiring

    def refresh_soon(self, reason: str) -> None:
        """Read the slot map again now (a subscription dropped, ``MOVED``, ...)."""
        self.last_error = reason
        self._wake.set()

    def publish_failed(self, error: Exception) -> None:
        text = str(error)
        redirected = isinstance(error, ResponseError) and text.startswith(
            ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
        )
        if redirected or isinstance(error, RedisConnectionError):
            self.refresh_soon(f"a publish failed: {text}")

    # --- the watch ---

    async def _watch(self) -> None:
        interval = self._settings.REDIS_TOPOLOGY_CHECK_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.refresh()
                await self._probe()
            except (RedisError, OSError) as exc:
                self.last_error = repr(exc)

    async def _probe(self) -> None:
        limit = self._settings.REDIS_DELIVERY_STALL_SECONDS
        for node in list(self.nodes.values()):
            sub = node.subscriber
            if sub is None or not sub.connected:
                continue
            if node.probe_sent is None:
                node.probe_sent = time.monotonic()
                with contextlib.suppress(RedisError, OSError):
                    await node.pipe.execute("SPUBLISH", sub.control, "probe")
            elif node.stalled(limit):
                self.stalls += 1
                node.probe_sent = None
                sub.restart("delivery stalled: the probe did not come back")

    async def refresh(self) -> None:
        """Read the slot map; apply it when it changed."""
        shards = await read_map(self._settings, self._topology, self.shards)
        if shards != self.shards:
            self._apply(shards)

    def _apply(self, shards: list[Shard]) -> None:
        old = {s.primary for s in self.shards}
        new = {s.primary for s in shards}
        if self.shards:
            self.map_changes += 1
            logger.warning("Redis Cluster slot map changed: %s", [s.primary for s in shards])
        owners = [""] * SLOTS
        for shard in shards:
            for start, end in shard.ranges:
                owners[start : end + 1] = [shard.primary] * (end - start + 1)
        self.shards, self._owners = shards, owners
        for address in old - new:
            if address in self.nodes:
                self.failovers += 1
                retiring = asyncio.create_task(self._retire(address))
                self._retiring.add(retiring)
                retiring.add_done_callback(self._retiring.discard)
        for shard in shards:
            slots = frozenset(s for start, end in shard.ranges for s in range(start, end + 1))
            node = self.nodes.get(shard.primary)
            if node is None:
                node = self._add(shard.primary)
            if node.slots == slots:
                continue
            node.slots = slots
            assert node.subscriber is not None
            control_moved = key_slot(node.subscriber.control.encode()) not in slots
            if control_moved:
                self._place_control(node)
            # Started over only when what it carries changes (a slot of a followed
            # channel came or went) or its control channel's slot left: the pipe's
            # publishes in flight fail with the connection.
            if control_moved or set(self._carried_by(shard.primary)) != node.carried:
                node.subscriber.restart(f"the channels of {shard.primary} moved")

    def _add(self, address: str) -> Node:
        host, _, port = address.rpartition(":")
        topology, settings = self._topology, self._settings
        pipe = CommandPipe(
            "redis://",
            settings.REDIS_SOCKET_TIMEOUT_SECONDS,
            self._name,
            resolver=_fixed(
                RedisAddress(
                    host=host,
                    port=int(port),
                    username=topology.username,
                    password=topology.password,
                )
            ),
        )
        timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
        node = Node(address, pipe, Subscriptions(self._positions, timeout, sharded=True))
        node.subscriber = Subscriber(
            self._owner,
            pipe,
            node.subscriptions,
            self._recovery,
            node,
            "",
            settings,
            sharded=True,
        )
        self.nodes[address] = node
        node.subscriber.start()
        return node

    def _place_control(self, node: Node) -> None:
        """A control channel for ``node`` hashed to one of its slots."""
        assert node.subscriber is not None
        for index in range(100_000):
            if key_slot(str(index).encode()) in node.slots:
                node.subscriber.control = f"{self._control_prefix}:{{{index}}}"
                return

    async def _retire(self, address: str) -> None:
        node = self.nodes.pop(address, None)
        if node is None or node.subscriber is None:
            return
        sub = node.subscriber
        self._retired[0] += sub.reconnects
        self._retired[1] += sub.resubscribes
        self._retired[2] += sub.catch_ups
        await sub.stop()
        await node.pipe.close()

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        shards: list[dict[str, Any]] = []
        ages: list[float] = []
        for shard in self.shards:
            node = self.nodes.get(shard.primary)
            sub = node.subscriber if node is not None else None
            age = round(now - node.last_delivery, 3) if node is not None else None
            if age is not None:
                ages.append(age)
            shards.append(
                {
                    "primary": shard.primary,
                    "replicas": list(shard.replicas),
                    "slots": shard.slots,
                    "connected": sub is not None and sub.connected,
                    "seconds_since_delivery": age,
                }
            )
        return {
            "kind": "cluster",
            "shards": shards,
            "connections": len(self.nodes),
            "failovers": self.failovers,
            "slot_map_changes": self.map_changes,
            "seconds_since_delivery": max(ages, default=0.0),
        }


def _fixed(address: RedisAddress) -> Callable[[], Any]:
    """A resolver that always names ``address`` (the pipe then checks ``ROLE``: a node
    demoted to replica is refused, and the map is read again)."""

    async def resolve() -> RedisAddress:
        return address

    return resolve
