"""The subscriber of one Redis connection: subscribe, catch up, deliver, start over.

:class:`Subscriber` runs on one :class:`~infrastructure.bus.redis.pipe.CommandPipe`
(one server: the process's only one; a cluster: one per primary, see
:mod:`~infrastructure.bus.redis.cluster`). Its loop connects, subscribes every channel
it is responsible for (:meth:`SubscriberOwner.channels_of`) and its control channel,
waits until Redis confirmed each, catches each channel up from its Stream (a
reconnect: what came while it was away) and then delivers live; when the connection
ends it starts over with backoff. Pushes are handled as they are read
(:meth:`Subscriber.on_push`): events, the probes of the delivery watch, the
acknowledgements of (S)SUBSCRIBE and (S)UNSUBSCRIBE, and, on a cluster, a
``sunsubscribe`` the server sent by itself (the slot moved, or the node was demoted):
the owner re-reads the slot map and this subscriber starts over.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any, Protocol

from infrastructure.bus.event import Event
from infrastructure.bus.redis.pipe import CommandPipe, Link
from infrastructure.bus.redis.recovery import Recovery
from infrastructure.bus.redis.streams import text
from infrastructure.bus.redis.subscriptions import Subscriptions
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class SubscriberOwner(Protocol):
    """What a subscriber asks of the bus (the manager)."""

    def channels_of(self, subscriber: Subscriber) -> list[str]:
        """The followed channels this subscriber carries (a cluster: its slots')."""

    def has(self, channel: str) -> bool:
        """Whether ``channel`` has listeners here."""

    def baseline_wanted(self, channel: str) -> None:
        """``channel`` was just subscribed: read its history position if not known."""

    def deliver(self, event: Event, tag: bytes) -> None:
        """An event read from Redis (live or from a catch-up; ``tag``: the outbox's)."""

    async def subscriber_up(self, subscriber: Subscriber) -> None:
        """The subscriber is up (deferred replays, the outbox can go now)."""

    def subscriber_lost(self, subscriber: Subscriber, reason: str) -> None:
        """The connection ended, or the server dropped a subscription by itself."""


class DeliveryWatch(Protocol):
    """Told when the subscriber is up on a new connection and when a probe returned."""

    def connected(self) -> None: ...

    def probe_returned(self) -> None: ...


class Subscriber:
    """See the module. ``sharded``: SSUBSCRIBE / ``smessage`` (Redis Cluster)."""

    def __init__(
        self,
        owner: SubscriberOwner,
        pipe: CommandPipe,
        subscriptions: Subscriptions,
        recovery: Recovery,
        watch: DeliveryWatch,
        control: str,
        settings: Settings,
        sharded: bool = False,
    ) -> None:
        self.owner = owner
        self.pipe = pipe
        self.subscriptions = subscriptions
        self.recovery = recovery
        self.watch = watch
        self._control = control
        self._control_bytes = control.encode()
        self._settings = settings
        self._message = b"smessage" if sharded else b"message"
        self._subscribed = b"ssubscribe" if sharded else b"subscribe"
        self._unsubscribed = b"sunsubscribe" if sharded else b"unsubscribe"
        self._sharded = sharded
        #: The connection subscribed on (None while down).
        self.link: Link | None = None
        #: While (re)subscribing: the messages that came meanwhile, delivered after the
        #: catch-up from history (None once up).
        self._early: list[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.up = asyncio.Event()
        #: Set while down (the connection's end has been seen).
        self.lost = asyncio.Event()
        self._closing = False
        self.reconnects = 0
        self.resubscribes = 0
        self.catch_ups = 0
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self.up.is_set()

    @property
    def control(self) -> str:
        """A channel of this connection alone: subscribed first, so a connection always
        has a subscription to confirm; the watch's probes come back on it. (A cluster
        names it anew when its node's slots change: it must hash to one of them.)"""
        return self._control

    @control.setter
    def control(self, name: str) -> None:
        self._control = name
        self._control_bytes = name.encode()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-sse-subscriber")

    async def stop(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)
        self.drop_link()
        self.up.clear()
        self.subscriptions.down()

    def restart(self, reason: str) -> None:
        """End the connection subscribed on (wrong server, a slot moved, no longer
        delivering): the loop connects again, resubscribes and catches up."""
        link = self.link
        if link is not None:
            logger.warning("Redis subscriber starts over: %s", reason)
            self.last_error = reason
            self.pipe.drop(link, RedisConnectionError(reason))

    def drop_link(self) -> None:
        """Give up the connection subscribed on: what is subscribed there is no longer
        known (the pipe connects again for the next command or subscriber)."""
        link, self.link = self.link, None
        if link is not None:
            self.pipe.drop(link, RedisConnectionError("the subscriber starts over"))

    # --- the loop ---

    async def _run(self) -> None:
        settings = self._settings
        delay = settings.REDIS_RECONNECT_MIN_SECONDS
        # A cluster's subscriber catches up at once too: its channels may come from
        # another primary (a slot moved, a failover) where they were followed.
        first = not self._sharded
        while not self._closing:
            try:
                await self._open(catch_up=not first)
                first = False
                delay = settings.REDIS_RECONNECT_MIN_SECONDS
                # Pushes reach ``on_push`` as they are read; this returns only by
                # raising: the error that ended the connection.
                assert self.link is not None
                await self.link.ended
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ConnectionError) as exc:
                self.last_error = repr(exc)
                if self.connected:
                    logger.warning("Redis subscriber connection lost: %r", exc)
            except Exception:
                logger.exception("Redis subscriber failed")
            was_connected = self.connected
            self.up.clear()
            self.lost.set()
            self.drop_link()
            self.subscriptions.down()
            self.owner.subscriber_lost(self, self.last_error or "the connection ended")
            if self._closing:
                return
            if was_connected:
                self.reconnects += 1
            first = first and not was_connected
            # Full jitter, capped: replicas that lost Redis together do not return
            # in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, settings.REDIS_RECONNECT_MAX_SECONDS)

    async def _open(self, catch_up: bool) -> None:
        link = self.link = await self.pipe.link(self.on_push)
        self._early = []
        channels = self.owner.channels_of(self)
        # Confirmed first: once every channel is, what is not yet in the Streams
        # reaches us live, so the catch-up below leaves no gap. (Messages that come
        # meanwhile wait in ``_early``.)
        await self.subscriptions.subscribe_all(link, [self.control, *channels])
        if catch_up:
            self.resubscribes += 1
            await self.recovery.catch_up(channels, self._deliver_event)
            self.catch_ups += 1
        self.watch.connected()
        self.up.set()
        self.lost.clear()
        self.subscriptions.up(link, self.owner.channels_of(self))
        early, self._early = self._early, None
        for response in early:
            self._on_message(response)
        await self.owner.subscriber_up(self)

    def on_push(self, response: Any) -> None:
        kind = response[0]
        if kind == self._message:
            if response[1] == self._control_bytes:  # a probe of the delivery watch
                self.watch.probe_returned()
            elif self._early is not None:
                self._early.append(response)
            else:
                self._on_message(response)
        elif kind == self._subscribed or kind == self._unsubscribed:
            channel = text(response[1])
            subscribed = kind == self._subscribed
            if subscribed and self.owner.has(channel):
                self.owner.baseline_wanted(channel)
            solicited = self.subscriptions.acknowledged(channel, subscribed)
            if not solicited and not subscribed and self._sharded:
                # The server ended a shard channel's subscription by itself: its slot
                # moved to another primary, or this one was demoted.
                self.owner.subscriber_lost(self, f"the server dropped {channel}")

    def _on_message(self, response: Sequence[Any]) -> None:
        data: bytes = response[2]
        epoch, event_id, tag, body = data.split(b" ", 3)
        event = Event(text(response[1]), epoch.decode(), event_id.decode(), body)
        self.owner.deliver(event, tag)

    def _deliver_event(self, event: Event) -> None:
        self.owner.deliver(event, b"-")
