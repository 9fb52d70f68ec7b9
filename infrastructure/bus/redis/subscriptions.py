"""Which channels this process is subscribed to on the bus's connection.

The hub tells (:class:`~infrastructure.bus.hub.ChannelWatcher`) when a channel gets
its first listener and loses its last; the SUBSCRIBE and UNSUBSCRIBE commands that
follow are batched (the channels of every stream opened in one loop turn go out in
one command, many channels per command) and written straight to the connection's
:class:`~infrastructure.bus.redis.pipe.Link`: their acknowledgements come back as
pushes (:meth:`Subscriptions.acknowledged`). A joiner waits until Redis has
acknowledged *its* SUBSCRIBE (commands sent and acknowledgements read are counted
per channel), so an event published after it returns is never missed.

When the subscriber connects (again), :meth:`Subscriptions.subscribe_all` sends every
channel at once and waits for all the acknowledgements: what is not yet in the
Streams will then reach us live, so a catch-up from the Streams leaves no gap.

On a Redis Cluster (``sharded``) the commands are SSUBSCRIBE and SUNSUBSCRIBE, and one
command carries channels of one slot only (Redis refuses a command across slots).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from infrastructure.bus.redis.connection import pack_commands
from infrastructure.bus.redis.pipe import Link
from infrastructure.bus.redis.positions import ChannelPositions
from infrastructure.bus.waiting import wait_done
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

#: Channels per SUBSCRIBE/UNSUBSCRIBE command.
SUBSCRIBE_BATCH = 2000


class Subscriptions:
    """The subscription bookkeeping of one process (see the module)."""

    def __init__(self, positions: ChannelPositions, timeout: float, sharded: bool = False) -> None:
        self._positions = positions
        self._timeout = timeout
        self._sharded = sharded
        self._subscribe = "SSUBSCRIBE" if sharded else "SUBSCRIBE"
        self._unsubscribe = "SUNSUBSCRIBE" if sharded else "UNSUBSCRIBE"
        #: The connection subscribed on, while the subscriber is up.
        self._link: Link | None = None
        # Per channel: commands sent and acknowledgements read, so that a joiner is
        # released by the reply to *its* SUBSCRIBE.
        self._sent: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._ready: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._to_subscribe: dict[str, None] = {}
        self._to_unsubscribe: dict[str, None] = {}
        self._flush_scheduled = False
        #: While (re)subscribing: the channels whose SUBSCRIBE is not yet confirmed,
        #: and what is set once none is left.
        self._unconfirmed: set[str] = set()
        self._confirmed: asyncio.Future[None] | None = None
        self.last_error: str | None = None

    # --- ChannelWatcher: the hub's channels ---

    def channel_opened(self, channel: str) -> None:
        self._positions.follow(channel)
        self._to_unsubscribe.pop(channel, None)
        self._to_subscribe[channel] = None
        if self._link is not None:
            seq = self._sent.get(channel, 0) + 1
            previous = self._ready.get(channel)
            future = previous[1] if previous and not previous[1].done() else None
            self._ready[channel] = (seq, future or asyncio.get_running_loop().create_future())
        self._schedule_flush()

    def channel_closed(self, channel: str) -> None:
        self._positions.forget(channel)
        self._to_subscribe.pop(channel, None)
        self._to_unsubscribe[channel] = None
        self._schedule_flush()

    async def wait_subscribed(self, channels: Sequence[str]) -> None:
        """Until Redis has acknowledged the SUBSCRIBE of each channel; bounded: if Redis
        goes away meanwhile, the listener stays attached and is caught up from history
        on reconnect."""
        ready = self._ready
        waits = [ready[ch][1] for ch in channels if ch in ready and not ready[ch][1].done()]
        if waits and self._link is not None:
            await wait_done(waits, self._timeout)

    # --- the connection ---

    async def subscribe_all(self, link: Link, channels: Sequence[str]) -> None:
        """Subscribe ``channels`` on a new connection and wait until Redis has
        confirmed every one (raises if the connection ends first)."""
        self._sent.clear()
        self._acked.clear()
        self._to_subscribe.clear()
        self._to_unsubscribe.clear()
        pending = dict.fromkeys(channels)
        commands = [(self._subscribe, *batch) for batch in self._take_batches(pending)]
        self._unconfirmed = set(channels)
        confirmed = self._confirmed = asyncio.get_running_loop().create_future()

        def ended(done: asyncio.Future[None]) -> None:
            if not confirmed.done():
                error = None if done.cancelled() else done.exception()
                confirmed.set_exception(error or RedisConnectionError("the connection has ended"))

        link.ended.add_done_callback(ended)
        try:
            link.write(pack_commands(commands))
            await asyncio.wait_for(confirmed, self._timeout)
        finally:
            link.ended.remove_done_callback(ended)
            self._confirmed = None
            self._unconfirmed = set()

    def up(self, link: Link, channels: Sequence[str]) -> None:
        """The subscriber is up on ``link``: subscribe the channels that got listeners
        while it was away, or since."""
        self._link = link
        for channel in channels:
            if channel not in self._sent:
                self._to_subscribe[channel] = None
        self._schedule_flush()

    def down(self) -> None:
        """The connection is gone (and its subscriptions with it): let every joiner go;
        the next :meth:`subscribe_all` starts over."""
        self._link = None
        for _, future in self._ready.values():
            if not future.done():
                future.set_result(None)
        self._ready.clear()

    def acknowledged(self, channel: str, subscribed: bool) -> bool:
        """Redis confirmed a SUBSCRIBE (``subscribed``) or an UNSUBSCRIBE of ``channel``;
        False when no command of ours was waiting for it (the server unsubscribed the
        channel by itself: on a cluster, its slot moved)."""
        solicited = channel in self._sent
        if subscribed:
            unconfirmed = self._unconfirmed
            if unconfirmed:
                unconfirmed.discard(channel)
                if not unconfirmed and self._confirmed is not None:
                    self._confirmed.set_result(None)
        acked = self._acked[channel] = self._acked.get(channel, 0) + 1
        if acked >= self._sent.get(channel, 0):
            # Every command sent for this channel is answered: forget it, so the
            # tables do not grow with every channel ever used.
            self._sent.pop(channel, None)
            self._acked.pop(channel, None)
        entry = self._ready.get(channel)
        if entry is not None and acked >= entry[0]:
            del self._ready[channel]
            if not entry[1].done():
                entry[1].set_result(None)
        return solicited

    # --- batching ---

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or self._link is None:
            return
        self._flush_scheduled = True
        # Soon, not now: the channels of every stream opened in this loop turn go out
        # in one command.
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send the pending SUBSCRIBE/UNSUBSCRIBE commands, many channels per command,
        straight to the connection (see bench/README.md for why not redis-py's
        ``execute_command``). A connection that is gone takes the commands with it; the
        subscriber then meets its end and subscribes every channel again on the next."""
        self._flush_scheduled = False
        link = self._link
        if link is None:
            return
        commands: list[tuple[str, ...]] = [
            (self._unsubscribe, *batch) for batch in self._take_batches(self._to_unsubscribe)
        ]
        for channels in self._take_batches(self._to_subscribe):
            for ch in channels:
                entry = self._ready.get(ch)
                if entry is not None:
                    self._ready[ch] = (self._sent[ch], entry[1])
            commands.append((self._subscribe, *channels))
        try:
            link.write(pack_commands(commands))
        except (RedisError, RuntimeError, OSError) as exc:  # the subscriber resubscribes
            self.last_error = repr(exc)

    def _take_batches(self, pending: dict[str, None]) -> list[list[str]]:
        """Every channel of ``pending`` (emptied), each counted as sent, in batches of at
        most ``SUBSCRIBE_BATCH``; sharded, one slot per batch."""
        groups: list[list[str]]
        if self._sharded:
            by_slot: dict[int, list[str]] = {}
            for ch in pending:
                by_slot.setdefault(key_slot(ch.encode()), []).append(ch)
            groups = list(by_slot.values())
        else:
            groups = [list(pending)]
        pending.clear()
        batches: list[list[str]] = []
        for group in groups:
            for start in range(0, len(group), SUBSCRIBE_BATCH):
                batch = group[start : start + SUBSCRIBE_BATCH]
                for ch in batch:
                    self._sent[ch] = self._sent.get(ch, 0) + 1
                batches.append(batch)
        return batches
