"""The Redis side of the SSE bus: one connection per process subscribes and publishes.

* ``publish`` runs one Lua script (:mod:`~infrastructure.bus.redis.publish_script`)
  that appends the event to the channel's history Stream, gives the Stream an epoch
  if it is new, and ``PUBLISH``-es it: no event is published without its history
  entry, and every event's id is its Stream id.
* One connection (the :class:`~infrastructure.bus.redis.pipe.CommandPipe`'s, RESP3)
  carries every channel any listener of this process follows and the process's
  publishes; :class:`~infrastructure.bus.hub.LocalHub` fans out. Which channels are
  subscribed is :mod:`~infrastructure.bus.redis.subscriptions`' business; where this
  process is in each, :mod:`~infrastructure.bus.redis.positions`'.
* When the connection drops, :meth:`RedisSseManager._run` reconnects with backoff,
  resubscribes every channel, catches each channel up from its Stream
  (:mod:`~infrastructure.bus.redis.recovery`) and then writes the
  :mod:`~infrastructure.bus.redis.outbox`: events published here while Redis was
  unreachable, which local listeners already received. Where Redis is (Sentinel),
  and whether the subscription still delivers, is
  :mod:`~infrastructure.bus.redis.topology`'s watch, which restarts the subscriber.

redis-py's PubSub is not used: its retry layer would reconnect silently and
resubscribe only what it tracked itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import redis.asyncio as aioredis
from infrastructure.bus.event import Event
from infrastructure.bus.history import Replay, new_epoch
from infrastructure.bus.hub import DeliveryCounter, LocalHub
from infrastructure.bus.listener import Listener, envelopes
from infrastructure.bus.redis.outbox import Outbox
from infrastructure.bus.redis.pipe import CommandPipe, Link
from infrastructure.bus.redis.pool import make_bus_pipe, make_redis_client
from infrastructure.bus.redis.positions import ChannelPositions
from infrastructure.bus.redis.publish_script import NO_TAG
from infrastructure.bus.redis.publisher import NotReplicated, Publisher, as_body
from infrastructure.bus.redis.recovery import Recovery
from infrastructure.bus.redis.sentinel import SentinelPrimary
from infrastructure.bus.redis.streams import ChannelKeys, StreamHistory, text
from infrastructure.bus.redis.subscriptions import Subscriptions
from infrastructure.bus.redis.topology import TopologyWatch
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings, get_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RedisUnavailable(RuntimeError):
    pass


class RedisSseManager:
    """Redis Pub/Sub + Streams for the SSE bus (the seed's ``RedisSseManager``).

    ``pipe`` and ``redis`` (the command pool) are given by the composition root
    (:mod:`infrastructure.container`), which closes them; built here when not given,
    and then closed here.
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
        self._owns_clients = pipe is None
        if pipe is None:
            pipe, primary = make_bus_pipe(settings)
        self.pipe: CommandPipe = pipe
        self.redis = redis or make_redis_client(settings, "commands")
        timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
        self.keys = ChannelKeys(settings.REDIS_SSE_CHANNEL_PREFIX)
        self.history = StreamHistory(self.keys, self.pipe, self.redis, settings.SSE_HISTORY_LENGTH)
        self.positions = ChannelPositions(self.history, timeout)
        self.subscriptions = Subscriptions(self.positions, timeout)
        self.hub = LocalHub(self.subscriptions, counter)
        self.recovery = Recovery(self.history, self.positions)
        control = f"{self.keys.prefix}_control:{os.getpid()}:{new_epoch()}"
        #: A channel of this process alone: subscribed first, so a connection always
        #: has a subscription to confirm; the topology watch's probes come back on it.
        self._control = control
        self._control_bytes = control.encode()
        self.topology = TopologyWatch(
            settings,
            self.pipe,
            primary,
            lambda: self.pipe.execute("PUBLISH", control, "probe"),
            self._restart_subscriber,
            lambda: self.connected,
        )
        self._publisher = Publisher(
            self.pipe,
            self.keys,
            settings.SSE_HISTORY_LENGTH,
            settings.SSE_HISTORY_TTL_SECONDS * 1000,
            self.topology.required_acks,
            min(settings.REDIS_REPLICA_ACK_TIMEOUT_MS, int(timeout * 500)),
        )
        self.outbox = Outbox(
            self._publisher,
            settings.SSE_OUTBOX_MAXSIZE,
            control[-10:],
            (settings.REDIS_RECONNECT_MIN_SECONDS, settings.REDIS_RECONNECT_MAX_SECONDS),
        )
        #: The pipe's connection this process is subscribed on (None while down).
        self._link: Link | None = None
        #: While (re)subscribing: the messages that came meanwhile, delivered after
        #: the catch-up from history (None once the subscriber is up).
        self._early: list[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        #: Set while the subscriber is down (it has seen the connection end).
        self._lost = asyncio.Event()
        self._closing = False
        # Counters read by /metrics and /readyz.
        self.reconnects = 0
        self.published = 0
        self.resubscribes = 0
        self.catch_ups = 0
        self.not_replicated = 0
        self.last_error: str | None = None

    # --- lifecycle ---

    async def connect(self) -> None:
        """Start the subscriber. Returns once Redis answered, or at once if it does
        not: the manager keeps trying in the background and serves local listeners
        meanwhile (the outage mode)."""
        if self._task is None:
            # Sentinel: a master name no sentinel knows is an error at start.
            await self.topology.start()
            self._task = asyncio.create_task(self._run(), name="redis-sse-subscriber")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._connected.wait(), timeout=self.settings.REDIS_SOCKET_TIMEOUT_SECONDS
            )

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def outbox_overflow(self) -> int:
        return self.outbox.overflow

    def outbox_size(self) -> int:
        return len(self.outbox)

    async def health_check(self) -> bool:
        """Redis answers PING, the subscriber connection is up and delivers."""
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
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        await self.topology.stop()
        await self.positions.close()
        await self.outbox.close()
        self._drop_link()
        if self._owns_clients:
            await self.pipe.close()
            await self.redis.aclose()
        self._connected.clear()
        self.subscriptions.down()

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
        if attempted:
            # Events published before this one may still sit unread in the
            # subscriber's socket: let it drain them (it meets the same dead server,
            # so it notices at once) before this one is delivered here, so that local
            # listeners keep the publishing order.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._lost.wait(), self.settings.REDIS_SOCKET_TIMEOUT_SECONDS
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

    # --- the subscriber loop ---

    async def _run(self) -> None:
        settings = self.settings
        delay = settings.REDIS_RECONNECT_MIN_SECONDS
        first = True
        while not self._closing:
            try:
                await self._open_subscriber(catch_up=not first)
                first = False
                delay = settings.REDIS_RECONNECT_MIN_SECONDS
                # Pushes reach ``_on_push`` as they are read; this returns only by
                # raising: the error that ended the connection.
                assert self._link is not None
                await self._link.ended
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ConnectionError) as exc:
                self.last_error = repr(exc)
                if self.connected:
                    logger.warning("Redis subscriber connection lost: %r", exc)
            except Exception:
                logger.exception("Redis subscriber failed")
            was_connected = self.connected
            self._connected.clear()
            self._lost.set()
            self._drop_link()
            self.subscriptions.down()
            self.positions.release_waiters()
            if self._closing:
                return
            if was_connected:
                self.reconnects += 1
            first = first and not was_connected
            # Full jitter, capped: replicas that lost Redis together do not return
            # in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, settings.REDIS_RECONNECT_MAX_SECONDS)

    async def _open_subscriber(self, catch_up: bool) -> None:
        link = self._link = await self.pipe.link(self._on_push)
        self._early = []
        # Confirmed first: once every channel is, what is not yet in the Streams
        # reaches us live, so the catch-up below leaves no gap. (Messages that come
        # meanwhile wait in ``_early``.)
        await self.subscriptions.subscribe_all(link, [self._control, *self.hub.channels()])
        if catch_up:
            self.resubscribes += 1
            await self.recovery.catch_up(self.hub.channels(), self._deliver)
            self.catch_ups += 1
        self.topology.connected()
        self._connected.set()
        self._lost.clear()
        self.subscriptions.up(link, self.hub.channels())
        early, self._early = self._early, None
        for response in early:
            self._on_message(response)
        await self.recovery.replay_deferred()
        if len(self.outbox):
            await self.outbox.flush_once()

    def _on_push(self, response: Any) -> None:
        kind = response[0]
        if kind == b"message":
            if response[1] == self._control_bytes:  # a probe of the topology watch
                self.topology.probe_returned()
            elif self._early is not None:
                self._early.append(response)
            else:
                self._on_message(response)
        elif kind == b"subscribe" or kind == b"unsubscribe":
            channel = text(response[1])
            subscribed = kind == b"subscribe"
            if subscribed and self.hub.has(channel) and not self.positions.has_baseline(channel):
                self.positions.want(channel)
            self.subscriptions.acknowledged(channel, subscribed)

    def _on_message(self, response: list[Any]) -> None:
        channel = text(response[1])
        data: bytes = response[2]
        epoch, event_id, tag, body = data.split(b" ", 3)
        event = Event(channel, epoch.decode(), event_id.decode(), body)
        if not event_id:  # ephemeral (publish_ephemeral): it has no position to keep
            self.hub.dispatch(event)
            return
        # Ours, flushed from the outbox: local listeners already had the event
        # (without an id); now they get its id, so a later resume does not replay it.
        if tag != b"-" and self.outbox.claim(tag.decode()):
            event.id_only = True
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        if self.positions.is_new(event):
            self.hub.dispatch(event)

    def _restart_subscriber(self, reason: str) -> None:
        """End the subscriber's connection (wrong server, or no longer delivering): it
        connects again, resubscribes and catches up."""
        link = self._link
        if link is not None:
            logger.warning("Redis subscriber starts over: %s", reason)
            self.last_error = reason
            self.pipe.drop(link, RedisConnectionError(reason))

    def _drop_link(self) -> None:
        """Give up the connection subscribed on: what is subscribed there is no longer
        known (the pipe connects again for the next command or subscriber)."""
        link, self._link = self._link, None
        if link is not None:
            self.pipe.drop(link, RedisConnectionError("the subscriber starts over"))
