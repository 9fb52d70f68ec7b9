"""The Redis side of the SSE bus (:class:`RedisSseManager`): publishing, subscribing and
the outage mode, on the parts this package's modules make; how they fit together is the
package's docstring (``infrastructure/bus/redis/__init__.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import redis.asyncio as aioredis
from infrastructure.bus.event import Event
from infrastructure.bus.history import Replay, new_epoch
from infrastructure.bus.hub import DeliveryCounter, LocalHub
from infrastructure.bus.listener import Listener, envelopes
from infrastructure.bus.redis.cluster import ClusterNodes
from infrastructure.bus.redis.outbox import Outbox
from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.bus.redis.pool import connection_name, make_bus_pipe, make_redis_client
from infrastructure.bus.redis.positions import ChannelPositions
from infrastructure.bus.redis.publish_script import NO_TAG
from infrastructure.bus.redis.publisher import NotReplicated, Publisher, as_body
from infrastructure.bus.redis.recovery import Recovery
from infrastructure.bus.redis.sentinel import SentinelPrimary
from infrastructure.bus.redis.streams import ChannelKeys, StreamHistory
from infrastructure.bus.redis.subscriber import Subscriber
from infrastructure.bus.redis.subscriptions import Subscriptions
from infrastructure.bus.redis.topology import TopologyWatch
from infrastructure.config import Settings, get_settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RedisUnavailable(RuntimeError):
    pass


class RedisSseManager:
    """Redis Pub/Sub + Streams for the SSE bus (the seed's ``RedisSseManager``).

    ``pipe`` and ``redis`` (the command pool) are given by the composition root
    (:mod:`infrastructure.container`), which closes them; built here when not given,
    and then closed here. On a cluster there is no one ``pipe`` (one per primary,
    :class:`~infrastructure.bus.redis.cluster.ClusterNodes`'), and ``redis`` is
    redis-py's ``RedisCluster``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        counter: DeliveryCounter | None = None,
        pipe: CommandPipe | None = None,
        redis: aioredis.Redis | None = None,
        primary: SentinelPrimary | None = None,
    ) -> None:
        self.settings = settings = settings or get_settings()
        topology = settings.redis_topology
        clustered = topology.kind == "cluster"
        self._owns_pipe = pipe is None and not clustered
        self._owns_pool = redis is None
        if pipe is None and not clustered:
            pipe, primary = make_bus_pipe(settings)
        self._pipe = pipe
        self.redis = redis or make_redis_client(settings, "commands")
        timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
        prefix = settings.REDIS_SSE_CHANNEL_PREFIX
        self.keys = ChannelKeys(prefix, cluster=clustered)
        self.history = StreamHistory(self.keys, pipe, self.redis, settings.SSE_HISTORY_LENGTH)
        self.positions = ChannelPositions(self.history, timeout)
        self.recovery = Recovery(self.history, self.positions)
        control = f"{prefix}_control:{os.getpid()}:{new_epoch()}"
        self.cluster: ClusterNodes | None = None
        self._subscriber: Subscriber | None = None
        self.subscriptions: Subscriptions | ClusterNodes
        self.topology: TopologyWatch | ClusterNodes
        if clustered:
            cluster = self.cluster = ClusterNodes(
                self,
                lambda: self.hub.channels(),
                settings,
                topology,
                self.positions,
                self.recovery,
                control,
                connection_name(settings, "bus"),
            )
            self.subscriptions = self.topology = cluster
            required_acks = cluster.required_acks
        else:
            assert pipe is not None
            bus_pipe = pipe
            self.subscriptions = Subscriptions(self.positions, timeout)
            watch = self.topology = TopologyWatch(
                settings,
                bus_pipe,
                primary,
                lambda: bus_pipe.execute("PUBLISH", control, "probe"),
                self._restart_subscriber,
                lambda: self.connected,
            )
            self._subscriber = Subscriber(
                self, bus_pipe, self.subscriptions, self.recovery, watch, control, settings
            )
            required_acks = watch.required_acks
        self.hub = LocalHub(self.subscriptions, counter)
        self._publisher = Publisher(
            pipe,
            self.keys,
            settings.SSE_HISTORY_LENGTH,
            settings.SSE_HISTORY_TTL_SECONDS * 1000,
            required_acks,
            min(settings.REDIS_REPLICA_ACK_TIMEOUT_MS, int(timeout * 500)),
            pipe_for=self.cluster.pipe_for if self.cluster is not None else None,
        )
        self.outbox = Outbox(
            self._publisher,
            settings.SSE_OUTBOX_MAXSIZE,
            control[-10:],
            (settings.REDIS_RECONNECT_MIN_SECONDS, settings.REDIS_RECONNECT_MAX_SECONDS),
        )
        self._started = False
        self._closing = False
        # Counters read by /metrics and /readyz.
        self.published = 0
        self.not_replicated = 0
        self.last_error: str | None = None

    @property
    def pipe(self) -> CommandPipe:
        """The bus's connection to its one server (a cluster has one per primary)."""
        if self._pipe is None:
            raise RuntimeError("on a Redis Cluster the bus has one connection per primary")
        return self._pipe

    # --- lifecycle ---

    async def connect(self) -> None:
        """Start the subscriber(s). Returns once Redis answered, or at once if it does
        not: the manager keeps trying in the background and serves local listeners
        meanwhile (the outage mode)."""
        seconds = self.settings.REDIS_SOCKET_TIMEOUT_SECONDS
        if not self._started:
            self._started = True
            # Sentinel: a master name no sentinel knows, a cluster seed that is no
            # cluster node: an error at start.
            await self.topology.start()
            if self._subscriber is not None:
                self._subscriber.start()
        if self._subscriber is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscriber.up.wait(), timeout=seconds)
        elif self.cluster is not None:
            await self.cluster.wait_connected(seconds)

    @property
    def connected(self) -> bool:
        if self._subscriber is not None:
            return self._subscriber.connected
        return self.cluster is not None and self.cluster.connected

    @property
    def reconnects(self) -> int:
        return self._totals()[0]

    @property
    def resubscribes(self) -> int:
        return self._totals()[1]

    @property
    def catch_ups(self) -> int:
        return self._totals()[2]

    def _totals(self) -> tuple[int, int, int]:
        sub = self._subscriber
        if sub is not None:
            return sub.reconnects, sub.resubscribes, sub.catch_ups
        return self.cluster.totals() if self.cluster is not None else (0, 0, 0)

    @property
    def outbox_overflow(self) -> int:
        return self.outbox.overflow

    def outbox_size(self) -> int:
        return len(self.outbox)

    async def health_check(self) -> bool:
        """Redis answers PING, the subscriber connection(s) are up and deliver."""
        if not self.connected:
            return False
        if self.topology.stalled:
            self.last_error = "delivery stalled: the subscription's probe did not come back"
            return False
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError) as exc:
            self.last_error = repr(exc)
            return False

    async def close(self) -> None:
        self._closing = True
        if len(self.outbox):
            try:
                await self.outbox.flush_once()
            except (RedisError, OSError) as exc:
                logger.error(
                    "closing with %d events in the SSE outbox that never reached Redis (%r)",
                    len(self.outbox),
                    exc,
                )
        if self._subscriber is not None:
            await self._subscriber.stop()
        await self.topology.stop()
        await self.positions.close()
        await self.outbox.close()
        if self._owns_pipe and self._pipe is not None:
            await self._pipe.close()
        if self._owns_pool:
            await self.redis.aclose()

    # --- publishing ---

    async def publish(self, channel: str, message: bytes | str | dict[str, Any]) -> Event:
        """Publish one envelope (JSON object without ``id``) to ``channel``.

        If Redis cannot be reached, local listeners get the event at once and it
        waits in the outbox, in order, until Redis is back.
        """
        body = as_body(message)
        uid = self._publisher.next_uid()
        attempted = False
        unconfirmed = False  # on the primary, not on enough replicas
        if self.connected and not len(self.outbox):
            attempted = True
            # Twice at most: the connection may be stale (Redis restarted since it was
            # last used); the second try runs on a fresh one, checking by uid that the
            # first did not get through.
            for attempt in range(2):
                try:
                    epoch, event_id, _ = await self._publisher.run(
                        channel, body, NO_TAG, uid, check=attempt > 0
                    )
                except NotReplicated as exc:
                    self.last_error = repr(exc)
                    unconfirmed = True
                    continue
                except (RedisError, OSError) as exc:
                    self.last_error = repr(exc)
                    if self.cluster is not None:
                        self.cluster.publish_failed(exc)  # MOVED: read the slot map now
                    continue
                self.published += 1
                return Event(channel, epoch, event_id, body)
            logger.warning("publish to Redis failed (%s): kept in the outbox", self.last_error)
        if unconfirmed:
            # Published (listeners get its message) but not acknowledged: it waits in the
            # outbox for the replicas (the flush finds it by uid; only a primary that
            # lost it in a failover gets it again).
            self.not_replicated += 1
            self.outbox.keep(channel, body, uid, attempted=True)
            self.outbox.start_retry(lambda: self.connected and not self._closing)
            return Event(channel, "", "", body)
        subscriber = self._subscriber_for(channel)
        if attempted and subscriber is not None:
            # Events published before this one may still sit unread in the
            # subscriber's socket: let it drain them (it meets the same dead server,
            # so it notices at once) before this one is delivered here, so that local
            # listeners keep the publishing order.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    subscriber.lost.wait(), self.settings.REDIS_SOCKET_TIMEOUT_SECONDS
                )
        self.outbox.keep(channel, body, uid, attempted)
        event = Event(channel, "", "", body)
        self.hub.dispatch(event)
        if self.connected:
            # The subscriber is up (only this command failed): do not wait for a
            # reconnect that may never come to write the outbox.
            self.outbox.start_retry(lambda: self.connected and not self._closing)
        return event

    async def publish_ephemeral(self, channel: str, body: bytes) -> None:
        """An event that is not kept (typing): no history, no id, so a reconnect never
        replays it. With Redis unreachable only this process's listeners get it."""
        if self.connected:
            try:
                await self._publisher.run_ephemeral(channel, body)
                return
            except (RedisError, OSError) as exc:
                self.last_error = repr(exc)
        self.hub.dispatch(Event(channel, "", "", body))

    def _subscriber_for(self, channel: str) -> Subscriber | None:
        if self._subscriber is not None:
            return self._subscriber
        return self.cluster.subscriber_for(channel) if self.cluster is not None else None

    # --- subscribing ---

    async def attach(
        self, listener: Listener, cursor: Sequence[tuple[str, str]] | None = None
    ) -> list[Replay]:
        """Register ``listener``; once this returns, no later event is missed.

        With a ``cursor`` (one (epoch, id) per channel, from ``Last-Event-ID``), the
        events after it are read from history and pushed into the listener ahead
        of live ones, without gap or duplicate at the seam. Returns the replays,
        so the caller can tell about a reset.
        """
        self.hub.add(listener)
        try:
            await self.subscriptions.wait_subscribed(listener.channels)
            await self.positions.ensure_baseline(listener.channels, wait=self.connected)
            if cursor is None:
                self.positions.start_at_end(listener)
                return []
            if self.connected:
                try:
                    return await self.recovery.replay_into(listener, cursor)
                except (RedisError, OSError) as exc:
                    self.last_error = repr(exc)
            # History is out of reach: serve live events now, replay when Redis is
            # back (refusing would end the browser's EventSource for good).
            self.recovery.defer(listener, cursor)
            return []
        except BaseException:
            self.hub.remove(listener)
            raise

    def detach(self, listener: Listener) -> None:
        self.recovery.forget(listener)
        self.hub.remove(listener)

    async def subscribe(self, channel: str) -> AsyncGenerator[dict[str, Any], None]:
        """The seed's async generator: the envelopes published on ``channel``."""
        listener = Listener([channel], self.settings.SSE_QUEUE_MAXSIZE, owner=self.hub)
        await self.attach(listener)
        try:
            async with contextlib.aclosing(envelopes(listener)) as events:
                async for envelope in events:
                    yield envelope
        finally:
            self.detach(listener)

    # --- SubscriberOwner: what the subscriber(s) ask ---

    def channels_of(self, subscriber: Subscriber) -> list[str]:
        if self.cluster is not None:
            return self.cluster.channels_of(subscriber)
        return self.hub.channels()

    def has(self, channel: str) -> bool:
        return self.hub.has(channel)

    def baseline_wanted(self, channel: str) -> None:
        if not self.positions.has_baseline(channel):
            self.positions.want(channel)

    def deliver(self, event: Event, tag: bytes) -> None:
        if not event.id:  # ephemeral (publish_ephemeral): it has no position to keep
            self.hub.dispatch(event)
            return
        # Ours, flushed from the outbox: local listeners already had the event
        # (without an id); now they get its id, so a later resume does not replay it.
        if tag != b"-" and self.outbox.claim(tag.decode()):
            event.id_only = True
        if self.positions.is_new(event):
            self.hub.dispatch(event)

    async def subscriber_up(self, subscriber: Subscriber) -> None:
        await self.recovery.replay_deferred()
        if not len(self.outbox):
            return
        if self.cluster is None:
            await self.outbox.flush_once()  # fails with this connection: it starts over
            return
        # A cluster: the outbox's head may be for another primary, still away.
        try:
            await self.outbox.flush_once()
        except (RedisError, OSError) as exc:
            self.last_error = repr(exc)
            self.outbox.start_retry(lambda: not self._closing)

    def subscriber_lost(self, subscriber: Subscriber, reason: str) -> None:
        self.last_error = reason
        if not subscriber.connected:  # its connection is gone, not one subscription
            self.positions.release_waiters()
        if self.cluster is not None:
            self.cluster.refresh_soon(reason)

    def _restart_subscriber(self, reason: str) -> None:
        """End the subscriber's connection (wrong server, or no longer delivering): it
        connects again, resubscribes and catches up."""
        if self._subscriber is not None:
            self._subscriber.restart(reason)
