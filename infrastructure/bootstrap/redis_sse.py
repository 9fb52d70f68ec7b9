"""The Redis side of the SSE bus: one connection per process subscribes and publishes.

* ``publish`` runs one Lua script that appends the event to the channel's
  history Stream (``XADD MAXLEN ~``), gives the Stream an epoch if it is new, and
  ``PUBLISH``-es it: no event is published without its history entry, and every
  event's id is its Stream id.
* One connection carries every channel any listener of this process follows
  (:class:`~infrastructure.bootstrap.fanout.LocalHub` fans out), and the
  process's publishes: the command pipe's (:mod:`~infrastructure.bootstrap.redis_pipe`),
  RESP3, so a subscribed connection still runs commands. The first listener of a
  channel subscribes it, the last unsubscribes; commands are batched, and a
  joiner waits until Redis has *acknowledged* the SUBSCRIBE, so an event
  published after ``attach`` returns is never missed.
* When the connection drops it reconnects with backoff, resubscribes every
  channel, catches each channel up from its Stream (what was published while it
  was away) and then writes the outbox: events published here while Redis was
  unreachable, which local listeners already received.

redis-py's PubSub is not used: its retry layer would reconnect silently and
resubscribe only what it tracked itself. This module owns resubscription; the
pipe owns the connection (redis-py makes it: URL, AUTH, TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from infrastructure.bootstrap.fanout import (
    ORIGIN_EPOCH,
    ORIGIN_ID,
    Event,
    Listener,
    LocalHub,
    envelopes,
    id_key,
)
from infrastructure.bootstrap.history import Replay, judge_replay, new_epoch
from infrastructure.bootstrap.publish_script import NO_TAG, PUBLISH_LUA, PublishCall
from infrastructure.bootstrap.redis_client import connection_name, make_redis_client
from infrastructure.bootstrap.redis_pipe import CommandPipe, Link
from infrastructure.bootstrap.redis_wire import pack_commands
from infrastructure.config import Settings, get_settings
from infrastructure.events import EventType, build_envelope, dumps

logger = logging.getLogger(__name__)

_SUBSCRIBE_BATCH = 2000


@dataclass(slots=True)
class _PendingOutbox:
    channel: str
    body: bytes
    tag: str
    uid: str
    #: Redis may have run it (the reply was lost): look for it before writing.
    attempted: bool


class RedisUnavailable(RuntimeError):
    pass


class RedisSseManager:
    """Redis Pub/Sub + Streams for the SSE bus (the seed's ``RedisSseManager``)."""

    def __init__(self, settings: Settings | None = None, hub: LocalHub | None = None) -> None:
        self.settings = settings or get_settings()
        self.prefix = self.settings.REDIS_SSE_CHANNEL_PREFIX
        self.hub = hub or LocalHub()
        self.hub.on_first = self._on_first_listener
        self.hub.on_last = self._on_last_listener
        self._redis: aioredis.Redis | None = None
        #: The pipe's connection this process is subscribed on (None while down).
        self._link: Link | None = None
        #: While (re)subscribing: the messages that came meanwhile, delivered after
        #: the catch-up from history (None once the subscriber is up).
        self._early: list[Any] | None = None
        #: While (re)subscribing: the channels whose SUBSCRIBE is not yet confirmed,
        #: and what is set once none is left.
        self._unconfirmed: set[str] = set()
        self._confirmed: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        #: Set while the subscriber is down (the reader has seen the connection end).
        self._lost = asyncio.Event()
        self._closing = False
        self._control = f"{self.prefix}_control:{os.getpid()}:{new_epoch()}"
        # Subscription bookkeeping, per channel: commands sent and replies read,
        # so that a joiner is released by the reply to *its* SUBSCRIBE.
        self._sent: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._ready: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._to_subscribe: dict[str, None] = {}
        self._to_unsubscribe: dict[str, None] = {}
        self._flush_scheduled = False
        #: (epoch, id key) of the newest event seen per channel: dedupe and catch-up.
        self._last_seen: dict[str, tuple[str, tuple[int, int]]] = {}
        #: Channel -> (epoch, key) of its history when it was subscribed: where the
        #: catch-up after a reconnect starts for a channel no event was seen on yet.
        self._baseline: dict[str, tuple[str, tuple[int, int]]] = {}
        self._position_reader: asyncio.Task[None] | None = None
        self._pending_replays: dict[Listener, list[tuple[str, str]]] = {}
        self._positions_wanted: dict[str, asyncio.Future[None]] = {}
        self._outbox: deque[_PendingOutbox] = deque()
        self._outbox_retry: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._uid_prefix = new_epoch()[:8] + ":"
        self._epoch_base = new_epoch()[:6]
        self._uid_seq = 0
        self._publish_call = PublishCall(
            self.stream_key,
            self.epoch_key,
            self.settings.SSE_HISTORY_LENGTH,
            self.settings.SSE_HISTORY_TTL_SECONDS * 1000,
        )
        self._skip_tags: set[str] = set()
        self._tag_seq = 0
        self._pipe: CommandPipe | None = None
        # Counters read by /metrics and /readyz.
        self.reconnects = 0
        self.outbox_overflow = 0
        self.published = 0
        self.last_error: str | None = None

    # --- lifecycle ---

    async def connect(self) -> None:
        """Start the subscriber. Returns once Redis answered, or at once if it does
        not: the manager keeps trying in the background and serves local listeners
        meanwhile (the outage mode)."""
        if self._redis is None:
            # The reads of history; the session store shares it.
            self._redis = make_redis_client(self.settings, "commands")
            # The subscriptions and the publishes, the hot path: one pipelined
            # connection; redis-py retries nothing there: this manager decides
            # (outbox, uid check).
            self._pipe = CommandPipe(
                self.settings.REDIS_URL,
                self.settings.REDIS_SOCKET_TIMEOUT_SECONDS,
                connection_name(self.settings, "bus"),
            )
            self._pipe.on_push = self._on_push
        if self._reader is None:
            self._reader = asyncio.create_task(self._run(), name="redis-sse-subscriber")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._connected.wait(), timeout=self.settings.REDIS_SOCKET_TIMEOUT_SECONDS
            )

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pipe(self) -> CommandPipe:
        """The pipelined connection the publishes use (reads that must be cheap too)."""
        if self._pipe is None:
            raise RedisUnavailable("RedisSseManager.connect() was not called")
        return self._pipe

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RedisUnavailable("RedisSseManager.connect() was not called")
        return self._redis

    async def health_check(self) -> bool:
        """Redis answers PING and the subscriber connection is up."""
        if self._redis is None or not self.connected:
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError) as exc:
            self.last_error = repr(exc)
            return False

    async def close(self) -> None:
        self._closing = True
        if self.outbox_size():
            try:
                await self._flush_outbox_once()
            except (RedisError, OSError) as exc:
                logger.error(
                    "closing with %d events in the SSE outbox that never reached Redis (%r)",
                    self.outbox_size(),
                    exc,
                )
        for task in (self._reader, self._position_reader, self._outbox_retry):
            if task is not None:
                await stop_task(task)
        self._reader = self._position_reader = self._outbox_retry = None
        self._drop_link()
        if self._pipe is not None:
            await self._pipe.close()
            self._pipe = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        self._connected.clear()
        self._release_waiters()

    # --- publishing ---

    def stream_key(self, channel: str) -> str:
        return f"{self.prefix}history:{{{channel[len(self.prefix) :]}}}"

    def epoch_key(self, channel: str) -> str:
        return f"{self.prefix}epoch:{{{channel[len(self.prefix) :]}}}"

    async def publish(self, channel: str, message: bytes | str | dict[str, Any]) -> Event:
        """Publish one envelope (JSON object without ``id``) to ``channel``.

        If Redis cannot be reached, local listeners get the event at once and it
        waits in the outbox, in order, until Redis is back.
        """
        body = _as_body(message)
        self._uid_seq += 1
        uid = f"{self._uid_prefix}{self._uid_seq:x}"
        attempted = False
        if self.connected and not self._outbox:
            attempted = True
            # Twice at most: a pooled connection may be stale (Redis restarted since
            # it was last used); the second try runs on a fresh one, checking by uid
            # that the first did not get through.
            for attempt in range(2):
                try:
                    epoch, event_id = await self._run_publish(
                        channel, body, NO_TAG, uid, check=attempt > 0
                    )
                except (RedisError, OSError) as exc:
                    self.last_error = repr(exc)
                    continue
                self.published += 1
                return Event(channel, epoch, event_id, body)
            logger.warning("publish to Redis failed (%s): kept in the outbox", self.last_error)
            # Events published before this one may still sit unread in the
            # subscriber's socket: let it drain them (it meets the same dead server,
            # so it notices at once) before this one is delivered here, so that local
            # listeners keep the publishing order.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._lost.wait(), self.settings.REDIS_SOCKET_TIMEOUT_SECONDS
                )
        return self._keep_for_later(channel, body, uid, attempted)

    async def _run_publish(
        self, channel: str, body: bytes, tag: str, uid: str, check: bool = False
    ) -> tuple[str, str]:
        pipe = self.pipe
        # The epoch a new Stream would get: unique per process and publish is enough
        # (epochs only need to differ between generations of one channel).
        epoch = f"{self._epoch_base}{self._uid_seq:x}"[:16]
        call = self._publish_call
        try:
            result = await pipe.execute_packed(call.packed(channel, body, epoch, tag, uid, check))
        except NoScriptError:
            # A Redis that restarted, or had its script cache flushed: EVAL loads it.
            args = call.args(channel, body, epoch, tag, uid, check)
            result = await pipe.execute("EVAL", PUBLISH_LUA, *args)
        if len(result) > 2:  # already written by an earlier attempt: nothing published
            self._skip_tags.discard(tag)
        return result[0].decode(), result[1].decode()

    def _keep_for_later(self, channel: str, body: bytes, uid: str, attempted: bool) -> Event:
        event = Event(channel, "", "", body)
        if len(self._outbox) >= self.settings.SSE_OUTBOX_MAXSIZE:
            lost = self._outbox.popleft()
            self.outbox_overflow += 1
            logger.error(
                "SSE outbox full (SSE_OUTBOX_MAXSIZE=%d): the oldest waiting event for %s "
                "will not reach other processes",
                self.settings.SSE_OUTBOX_MAXSIZE,
                lost.channel,
            )
        self._tag_seq += 1
        tag = f"{self._control[-10:]}{self._tag_seq}"
        self._outbox.append(_PendingOutbox(channel, body, tag, uid, attempted))
        self.hub.dispatch(event)
        if self.connected:
            # The subscriber is up (only this command failed): do not wait for a
            # reconnect that may never come to write the outbox.
            self._start_outbox_retry()
        return event

    def _start_outbox_retry(self) -> None:
        if self._outbox_retry is None or self._outbox_retry.done():
            self._outbox_retry = asyncio.create_task(self._retry_outbox())

    async def _retry_outbox(self) -> None:
        delay = self.settings.REDIS_RECONNECT_MIN_SECONDS
        while self._outbox and self.connected and not self._closing:
            try:
                await self._flush_outbox_once()
            except (RedisError, OSError) as exc:
                self.last_error = repr(exc)
                await asyncio.sleep(random.uniform(0, delay))  # backoff between tries
                delay = min(delay * 2, self.settings.REDIS_RECONNECT_MAX_SECONDS)

    def outbox_size(self) -> int:
        return len(self._outbox)

    async def _flush_outbox_once(self) -> None:
        # One flusher at a time (the reconnect path and the retry task): the head
        # of the outbox is written once.
        async with self._flush_lock:
            while self._outbox:
                item = self._outbox[0]
                self._skip_tags.add(item.tag)
                try:
                    await self._run_publish(
                        item.channel, item.body, item.tag, item.uid, check=item.attempted
                    )
                except (RedisError, OSError):
                    self._skip_tags.discard(item.tag)
                    item.attempted = True
                    raise
                self._outbox.popleft()
                self.published += 1

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
            await self._wait_subscribed(listener.channels)
            await self._ensure_baseline(listener.channels)
            if cursor is None:
                self._start_at_end(listener)
                return []
            if self.connected:
                try:
                    return await self._replay_into(listener, cursor)
                except (RedisError, OSError) as exc:
                    self.last_error = repr(exc)
            # History is out of reach: serve live events now, replay when Redis is
            # back (refusing would end the browser's EventSource for good).
            self._pending_replays[listener] = list(cursor)
            return []
        except BaseException:
            self.hub.remove(listener)
            raise

    def _start_at_end(self, listener: Listener) -> None:
        """A stream opened without ``Last-Event-ID`` starts at the current end of every
        channel: its ``id:`` lines name a real position for each, so a reconnect never
        replays what came before the first connection (a multi-channel id used to carry
        the origin for a quiet channel, and the reconnect replayed its whole history)."""
        for index, channel in enumerate(listener.channels):
            known = self._last_seen.get(channel) or self._baseline.get(channel)
            if known is not None and known[0] != ORIGIN_EPOCH:
                epoch, (ms, seq) = known
                listener.start_at(index, epoch, f"{ms}-{seq}")

    def detach(self, listener: Listener) -> None:
        self._pending_replays.pop(listener, None)
        self.hub.remove(listener)

    async def subscribe(self, channel: str) -> AsyncGenerator[dict[str, Any], None]:
        """The seed's async generator: the envelopes published on ``channel``."""
        listener = Listener([channel], self.settings.SSE_QUEUE_MAXSIZE)
        await self.attach(listener)
        try:
            async with contextlib.aclosing(envelopes(listener)) as events:
                async for envelope in events:
                    yield envelope
        finally:
            self.detach(listener)

    async def position(self, channel: str) -> tuple[str, str] | None:
        """(epoch, newest id) of a channel's history; None when it has none."""
        try:
            (found,) = await self._positions_of([channel])
        except (RedisError, OSError, RedisUnavailable):
            return None
        if found is None:
            return None
        epoch, key = found
        return epoch, f"{key[0]}-{key[1]}"

    async def _positions_of(
        self, channels: Sequence[str]
    ) -> list[tuple[str, tuple[int, int]] | None]:
        """(epoch, newest id key) of each channel's history, None where it has none:
        two reads per channel, all in one write on the bus's connection."""
        commands: list[tuple[str | int, ...]] = []
        for channel in channels:
            commands.append(("GET", self.epoch_key(channel)))
            commands.append(("XREVRANGE", self.stream_key(channel), "+", "-", "COUNT", 1))
        answers = await self.pipe.execute_many(commands)
        positions: list[tuple[str, tuple[int, int]] | None] = []
        for index in range(len(channels)):
            epoch, last = answers[2 * index], answers[2 * index + 1]
            if epoch is None or not last:
                positions.append(None)
            else:
                positions.append((_text(epoch), id_key(_text(last[0][0]))))
        return positions

    async def history_after(self, channel: str, epoch: str, event_id: str) -> Replay:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.epoch_key(channel))
            pipe.xinfo_stream(self.stream_key(channel))
            try:
                current, info = await pipe.execute()
            except RedisError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                current, info = None, None
        current_epoch = current.decode() if current else None
        if info is None:
            current_epoch = None
        first = info.get("first-entry") if info else None
        max_deleted = self._trimmed_up_to(info, first)
        first_key = id_key(_text(first[0])) if first else None
        reset = judge_replay(epoch, event_id, current_epoch, first_key, max_deleted)
        if current_epoch is None:
            return Replay([], reset=reset)
        start = "-" if reset or epoch == ORIGIN_EPOCH else f"({event_id}"
        entries: Any = await self.redis.xrange(self.stream_key(channel), min=start, max="+")
        events = [
            Event(channel, current_epoch, _text(entry_id), fields[b"e"])
            for entry_id, fields in entries
        ]
        return Replay(events, reset=reset)

    def _trimmed_up_to(self, info: Any, first: Any) -> tuple[int, int]:
        """The newest id that may have been trimmed away ((0, 0): none).

        ``XADD MAXLEN ~`` trims without updating ``max-deleted-entry-id``, so trimming
        is judged by the count: more entries added than kept means everything
        before the first entry kept may be gone. (Redis < 7 reports neither: there,
        a full stream is taken as trimmed.)
        """
        if not info or not first:
            return (0, 0)
        length = int(info.get("length", 0))
        added = info.get("entries-added")
        trimmed = (
            int(added) > length
            if added is not None
            else (length >= self.settings.SSE_HISTORY_LENGTH)
        )
        if not trimmed:
            return (0, 0)
        ms, seq = id_key(_text(first[0]))
        return (ms, seq - 1) if seq else (ms - 1, 2**63)

    async def _replay_into(
        self, listener: Listener, cursor: Sequence[tuple[str, str]]
    ) -> list[Replay]:
        replays: list[Replay] = []
        for channel, (epoch, event_id) in zip(listener.channels, cursor, strict=True):
            replay = await self.history_after(channel, epoch, event_id)
            replays.append(replay)
            deliver_replay(listener, channel, replay)
        return replays

    def _on_first_listener(self, channel: str) -> None:
        self._to_unsubscribe.pop(channel, None)
        self._to_subscribe[channel] = None
        if self.connected:
            seq = self._sent.get(channel, 0) + 1
            previous = self._ready.get(channel)
            future = previous[1] if previous and not previous[1].done() else None
            self._ready[channel] = (seq, future or asyncio.get_running_loop().create_future())
        self._schedule_flush()

    def _on_last_listener(self, channel: str) -> None:
        self._to_subscribe.pop(channel, None)
        self._to_unsubscribe[channel] = None
        self._last_seen.pop(channel, None)
        self._baseline.pop(channel, None)
        self._schedule_flush()

    async def _wait_subscribed(self, channels: Sequence[str]) -> None:
        waits = [
            self._ready[ch][1]
            for ch in channels
            if ch in self._ready and not self._ready[ch][1].done()
        ]
        if waits and self.connected:
            # Bounded: if Redis goes away meanwhile, the listener stays attached and
            # is caught up from history on reconnect.
            await _wait_done(waits, self.settings.REDIS_SOCKET_TIMEOUT_SECONDS)

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or not self.connected:
            return
        self._flush_scheduled = True
        # Soon, not now: the channels of every stream opened in this loop turn go out
        # in one command.
        asyncio.get_running_loop().call_soon(self._flush_subscriptions)

    def _flush_subscriptions(self) -> None:
        """Send the pending SUBSCRIBE/UNSUBSCRIBE commands, many channels per command.

        Written straight to the connection (its :class:`Link`), as the command pipe
        writes: redis-py's ``execute_command`` (a connection check, a retry wrapper,
        a task to await the write) cost more than the rest of a stream's
        subscription, and the acknowledgements come back as pushes (``_on_push``)
        anyway. A connection that is gone takes the commands with it; the subscriber
        then meets its end and subscribes every channel again on the next one.
        """
        self._flush_scheduled = False
        link = self._link
        if link is None or not self.connected:
            return
        commands: list[tuple[str, ...]] = []
        while self._to_unsubscribe:
            commands.append(("UNSUBSCRIBE", *self._take_batch(self._to_unsubscribe)))
        while self._to_subscribe:
            channels = self._take_batch(self._to_subscribe)
            for ch in channels:
                entry = self._ready.get(ch)
                if entry is not None:
                    self._ready[ch] = (self._sent[ch], entry[1])
            commands.append(("SUBSCRIBE", *channels))
        try:
            link.write(pack_commands(commands))
        except (RedisError, RuntimeError, OSError) as exc:  # the reader resubscribes
            self.last_error = repr(exc)

    def _take_batch(self, pending: dict[str, None]) -> list[str]:
        """Up to ``_SUBSCRIBE_BATCH`` channels out of ``pending``, each counted as sent."""
        channels = list(pending)[:_SUBSCRIBE_BATCH]
        for ch in channels:
            del pending[ch]
            self._sent[ch] = self._sent.get(ch, 0) + 1
        return channels

    # --- the subscriber loop ---

    async def _run(self) -> None:
        delay = self.settings.REDIS_RECONNECT_MIN_SECONDS
        first = True
        while not self._closing:
            try:
                await self._open_subscriber(catch_up=not first)
                first = False
                delay = self.settings.REDIS_RECONNECT_MIN_SECONDS
                await self._until_lost()
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
            self._release_waiters()
            if self._closing:
                return
            if was_connected:
                self.reconnects += 1
            first = first and not was_connected
            # Full jitter, capped: replicas that lost Redis together do not return
            # in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, self.settings.REDIS_RECONNECT_MAX_SECONDS)

    async def _open_subscriber(self, catch_up: bool) -> None:
        link = self._link = await self.pipe.link()
        self._sent.clear()
        self._acked.clear()
        self._to_subscribe.clear()
        self._to_unsubscribe.clear()
        self._early = []
        channels = [self._control, *self.hub.channels()]
        pending = dict.fromkeys(channels)
        commands: list[tuple[str, ...]] = []
        while pending:
            commands.append(("SUBSCRIBE", *self._take_batch(pending)))
        # Wait for the acknowledgements first: once every channel is confirmed, what
        # is not yet in the Streams will reach us live, so the catch-up below
        # leaves no gap. (Messages that come meanwhile wait in ``_early``.)
        self._unconfirmed = set(channels)
        confirmed = self._confirmed = asyncio.get_running_loop().create_future()

        def ended(done: asyncio.Future[None]) -> None:
            if not confirmed.done():
                error = None if done.cancelled() else done.exception()
                confirmed.set_exception(error or RedisConnectionError("the connection has ended"))

        link.ended.add_done_callback(ended)
        try:
            link.write(pack_commands(commands))
            await asyncio.wait_for(confirmed, self.settings.REDIS_SOCKET_TIMEOUT_SECONDS)
        finally:
            link.ended.remove_done_callback(ended)
            self._confirmed = None
            self._unconfirmed = set()
        if catch_up:
            await self._catch_up()
        self._connected.set()
        self._lost.clear()
        early, self._early = self._early, None
        for response in early:
            self._on_message(response)
        await self._replay_pending()
        if self._outbox:
            await self._flush_outbox_once()
        # Channels that got listeners while we were away, or since.
        for channel in self.hub.channels():
            if channel not in self._sent:
                self._to_subscribe[channel] = None
        self._schedule_flush()

    async def _replay_pending(self) -> None:
        pending, self._pending_replays = self._pending_replays, {}
        for listener, cursor in pending.items():
            if not listener.closed:
                await self._replay_into(listener, cursor)

    async def _catch_up(self) -> None:
        """Deliver what each channel received while the subscriber was away."""
        for channel in self.hub.channels():
            position = self._last_seen.get(channel) or self._baseline.get(channel)
            if position is None:
                continue
            epoch, key = position
            replay = await self.history_after(channel, epoch, f"{key[0]}-{key[1]}")
            if replay.reset:
                # Redis came back empty, or trimmed past us: deliver what there is,
                # and say that something may be missing.
                logger.warning("events of %s may be lost: its history restarted", channel)
            for event in replay.events:
                self._deliver(event)

    async def _until_lost(self) -> None:
        # The pipe's connection hands every push to ``_on_push`` as it is read, in
        # the event loop's callback (see redis_wire): no task reads. Returns only by
        # raising: the error that ended the connection.
        assert self._link is not None
        await self._link.ended

    def _on_push(self, response: Any) -> None:
        kind = response[0]
        if kind == b"message":
            if self._early is not None:
                self._early.append(response)
            else:
                self._on_message(response)
        elif kind == b"subscribe" or kind == b"unsubscribe":
            channel = _text(response[1])
            self._on_ack(channel, subscribed=kind == b"subscribe")
            unconfirmed = self._unconfirmed
            if unconfirmed and kind == b"subscribe":
                unconfirmed.discard(channel)
                if not unconfirmed and self._confirmed is not None:
                    self._confirmed.set_result(None)

    def _on_ack(self, channel: str, subscribed: bool = False) -> None:
        if subscribed and self.hub.has(channel) and channel not in self._baseline:
            self._want_position(channel)
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

    def _want_position(self, channel: str) -> asyncio.Future[None]:
        """Read the channel's history position soon, batched with other channels."""
        future = self._positions_wanted.get(channel)
        if future is None:
            future = self._positions_wanted[channel] = asyncio.get_running_loop().create_future()
        if self._position_reader is None or self._position_reader.done():
            self._position_reader = asyncio.create_task(self._read_positions())
        return future

    async def _ensure_baseline(self, channels: Sequence[str]) -> None:
        """Wait until each channel's history position is known, so that a reconnect
        can catch it up even if no event was seen on it before Redis went away."""
        waits = [
            self._want_position(ch)
            for ch in channels
            if ch not in self._baseline and ch not in self._last_seen
        ]
        if waits and self.connected:
            await _wait_done(waits, self.settings.REDIS_SOCKET_TIMEOUT_SECONDS)

    async def _read_positions(self) -> None:
        # Loop: channels wanted while a read is in flight are read next round (their
        # waiters would otherwise wait for the timeout).
        while self._positions_wanted:
            await asyncio.sleep(0)  # let the acks of one SUBSCRIBE batch gather first
            wanted, self._positions_wanted = self._positions_wanted, {}
            try:
                await self._read_positions_of(list(wanted))
            finally:
                for future in wanted.values():
                    if not future.done():
                        future.set_result(None)

    async def _read_positions_of(self, channels: list[str]) -> None:
        try:
            positions = await self._positions_of(channels)
        except (RedisError, OSError, RedisUnavailable) as exc:
            self.last_error = repr(exc)
            return
        for channel, position in zip(channels, positions, strict=True):
            if not self.hub.has(channel) or channel in self._baseline:
                continue
            # No history yet: anything that appears later is new to us.
            self._baseline[channel] = position or (ORIGIN_EPOCH, (0, 0))

    def _on_message(self, response: list[Any]) -> None:
        channel = _text(response[1])
        data: bytes = response[2]
        epoch, event_id, tag, body = data.split(b" ", 3)
        event = Event(channel, epoch.decode(), event_id.decode(), body)
        if tag != b"-":
            text_tag = tag.decode()
            if text_tag in self._skip_tags:
                # Ours, flushed from the outbox: local listeners already had the event
                # (without an id); now they get its id, so a later resume does not
                # replay it to them again.
                self._skip_tags.discard(text_tag)
                event.id_only = True
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        seen = self._last_seen.get(event.channel)
        if seen is not None and seen[0] == event.epoch and event.key <= seen[1]:
            return
        self._note_seen(event)
        self.hub.dispatch(event)

    def _note_seen(self, event: Event) -> None:
        if self.hub.has(event.channel):
            self._last_seen[event.channel] = (event.epoch, event.key)

    def _release_waiters(self) -> None:
        for _, future in self._ready.values():
            if not future.done():
                future.set_result(None)
        self._ready.clear()
        for future in self._positions_wanted.values():
            if not future.done():
                future.set_result(None)

    def _drop_link(self) -> None:
        """Give up the connection subscribed on: what is subscribed there is no longer
        known (the pipe connects again for the next command or subscriber)."""
        link, self._link = self._link, None
        if link is not None and self._pipe is not None:
            self._pipe.drop(link, RedisConnectionError("the subscriber starts over"))


async def _wait_done(futures: Sequence[asyncio.Future[None]], seconds: float) -> None:
    """Until every future is done, or ``seconds`` have passed; none is cancelled
    (others may be waiting on the same one). ``asyncio.wait`` does the same with a
    task-like coroutine and sets: 36,000 instructions a wait against 20,000 here, and
    a stream open makes two."""
    pending = [future for future in futures if not future.done()]
    if not pending:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    remaining = len(pending)

    def one_done(_: object) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    def expire() -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in pending:
        future.add_done_callback(one_done)
    timer = loop.call_later(seconds, expire)
    try:
        await waiter
    finally:
        timer.cancel()
        for future in pending:
            future.remove_done_callback(one_done)


#: How long ``stop_task`` gives a cancelled task before cancelling it again.
_RECANCEL_SECONDS = 0.1


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for its end, whatever it returns or raises.

    Why not one ``cancel()`` and ``await``: on Python 3.11, ``asyncio.wait_for`` (which
    redis-py uses to send a command) swallows a cancellation that arrives as the
    operation it waits for completes (CPython gh-86296, fixed in 3.12). The subscriber
    task then carried on into a read that never ends, and ``close()`` waited for it
    forever (seen once in CI, at a test's teardown after a Redis restart). So the
    cancellation is repeated until the task is done.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_RECANCEL_SECONDS)
    if not task.cancelled():
        task.exception()  # retrieved: its outcome no longer matters


def deliver_replay(listener: Listener, channel: str, replay: Replay) -> None:
    """Put a client's replay into its listener ahead of live events, with the seam.

    On a reset the missed events are not replayed (the client refetches the
    session and transcript instead): it gets one ``reset`` event positioned at the
    newest event kept, then live events.
    """
    last = replay.events[-1] if replay.events else None
    floor = (last.epoch, last.key) if last is not None else None
    if replay.reset:
        listener.replay(channel, [reset_event(channel, last)], floor)
    else:
        listener.replay(channel, replay.events, floor)


def reset_event(channel: str, position: Event | None) -> Event:
    """A ``reset`` event carrying ``position`` (or the origin) as its id."""
    body = dumps(build_envelope(EventType.RESET, {"reason": "history_gap"}, "sse-bus"))
    if position is None:
        return Event(channel, ORIGIN_EPOCH, ORIGIN_ID, body)
    return Event(channel, position.epoch, position.id, body)


def _as_body(message: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(message, bytes):
        body = message
    elif isinstance(message, str):
        body = message.encode()
    else:
        body = dumps({k: v for k, v in message.items() if k not in ("id", "epoch")})
    if not body.startswith(b"{") or body == b"{}":
        raise ValueError("an SSE message is a non-empty JSON object")
    return body


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- the process-wide instance (the seed's singleton) ---

_manager: RedisSseManager | None = None


async def init_redis_sse(
    settings: Settings | None = None, hub: LocalHub | None = None
) -> RedisSseManager:
    global _manager
    if _manager is None:
        _manager = RedisSseManager(settings, hub)
    await _manager.connect()
    return _manager


def get_redis_sse_manager() -> RedisSseManager | None:
    return _manager


def adopt_manager(manager: RedisSseManager) -> None:
    """Make a manager built by the SSE bus the process's singleton (if none is)."""
    global _manager
    if _manager is None:
        _manager = manager


def forget_manager(manager: RedisSseManager) -> None:
    global _manager
    if _manager is manager:
        _manager = None


async def shutdown_redis_sse() -> None:
    global _manager
    manager, _manager = _manager, None
    if manager is not None:
        await manager.close()


__all__ = [
    "RedisSseManager",
    "RedisUnavailable",
    "adopt_manager",
    "deliver_replay",
    "forget_manager",
    "get_redis_sse_manager",
    "init_redis_sse",
    "reset_event",
    "shutdown_redis_sse",
]
