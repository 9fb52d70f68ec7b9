"""Local fan-out: one process's listeners, grouped by channel.

Both bus modes feed this hub. In Redis mode, the single subscriber connection
hands every message it reads to :meth:`LocalHub.dispatch`; in memory mode,
``publish`` does. Nothing here awaits on the hot path: dispatch appends one
shared :class:`Event` to each listener's bounded buffer and wakes it.

An event is encoded once: every listener of a single channel writes the same
bytes (:attr:`Event.frame`). A listener of several channels (an agent follows
its own channel and the broadcast) writes the same ``data:`` bytes behind an
``id:`` line of its own: its cursor, one position per channel, so that one
``Last-Event-ID`` resumes all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any, Final

import orjson

logger = logging.getLogger(__name__)

#: How an envelope built by ``build_envelope`` starts: its type comes first.
_TYPE_PREFIX: Final = b'{"type":"'
_TYPE_AT: Final = len(_TYPE_PREFIX)

#: The envelope with its position: the id spliced in front of the body's first key, no
#: decode, no re-encode (``Event.envelope_json``); and the whole SSE event around it
#: (``Event.frame``: ``id: <epoch>.<id>``, then ``data: <envelope>``).
_ENVELOPE_JSON: Final = b'{"id":"%b","epoch":"%b",%b'
_FRAME: Final = b"id: %b.%b\ndata: " + _ENVELOPE_JSON + b"\n\n"

#: The position of a channel no event has been seen on: before everything.
ORIGIN_EPOCH: Final = "0"
ORIGIN_ID: Final = "0-0"


def id_key(event_id: str) -> tuple[int, int]:
    """``"1703246400000-3"`` -> ``(1703246400000, 3)``: stream ids compare as pairs."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class Event:
    """One published event as it travels inside a process.

    ``body`` is the envelope JSON without ``id``/``epoch`` (as stored in the
    history); the wire forms are built lazily, once, and shared by every listener.
    """

    __slots__ = (
        "_chunk",
        "_data",
        "_frame",
        "_type",
        "body",
        "channel",
        "epoch",
        "id",
        "id_only",
        "key",
    )

    def __init__(
        self, channel: str, epoch: str, event_id: str, body: bytes, id_only: bool = False
    ) -> None:
        self.channel = channel
        #: Only moves the client's position: the event itself was already delivered
        #: (without an id, during a Redis outage). An SSE ``id:`` with no ``data:``
        #: sets the browser's lastEventId without dispatching an event (WHATWG).
        self.id_only = id_only
        self.epoch = epoch
        self.id = event_id
        self.key = id_key(event_id) if event_id else (0, 0)
        self.body = body
        self._data: bytes | None = None
        self._frame: bytes | None = None
        self._chunk: bytes | None = None
        self._type: str | None = None

    @property
    def type(self) -> str:
        """The envelope's ``type``, read without decoding the JSON: the envelope is
        built with ``type`` first (``build_envelope``); anything else is decoded."""
        if self._type is None:
            body = self.body
            end = body.find(b'"', _TYPE_AT) if body.startswith(_TYPE_PREFIX) else -1
            if end > 0:
                self._type = body[_TYPE_AT:end].decode()
            else:
                self._type = str(orjson.loads(body).get("type", ""))
        return self._type

    @property
    def token(self) -> str:
        """This event's position in its channel: ``<epoch>.<id>``."""
        return f"{self.epoch}.{self.id}"

    @property
    def envelope_json(self) -> bytes:
        return _ENVELOPE_JSON % (self.id.encode(), self.epoch.encode(), self.body[1:])

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = b"\n" if self.id_only else b"data: " + self.envelope_json + b"\n\n"
        return self._data

    @property
    def frame(self) -> bytes:
        """The whole SSE event for a single-channel listener."""
        if self._frame is None:
            if self.id and not self.id_only:
                # The id line and the data line in one formatting (``token``, then
                # ``data``): every event builds this once, on the delivery path.
                epoch, event_id = self.epoch.encode(), self.id.encode()
                self._frame = _FRAME % (epoch, event_id, event_id, epoch, self.body[1:])
            elif self.id:
                self._frame = b"id: " + self.token.encode() + b"\n" + self.data
            else:
                # Not yet in history (published during a Redis outage): no id, so
                # the browser keeps its last real one and resumes from there.
                self._frame = self.data
        return self._frame

    @property
    def chunk(self) -> bytes:
        """:attr:`frame` as one HTTP/1.1 chunk, for writers that write straight to the
        connection (``web/direct_write.py``)."""
        if self._chunk is None:
            self._chunk = http_chunk(self.frame)
        return self._chunk

    def envelope(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.envelope_json)
        return result


def http_chunk(body: bytes) -> bytes:
    """``body`` as one HTTP/1.1 chunk (the framing uvicorn's ``send`` adds to a body)."""
    return b"%x\r\n%b\r\n" % (len(body), body)


#: Items a listener's buffer can hold besides events.
PING: Final = b": ping\n\n"


class ListenerClosed(Exception):
    """Raised by :meth:`Listener.next_batch` once the listener is closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Listener:
    """One consumer (an SSE response, or a ``subscribe()`` generator).

    Its buffer is bounded: a listener that falls ``maxsize`` events behind is
    closed with reason ``"slow"`` rather than let memory grow; its client
    resumes from history with its ``Last-Event-ID``.
    """

    __slots__ = (
        "_buf",
        "_floors",
        "_waiter",
        "channels",
        "close_reason",
        "cursor",
        "maxsize",
        "on_close",
        "writer",
    )

    def __init__(
        self,
        channels: Sequence[str],
        maxsize: int,
        cursor: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.channels = tuple(channels)
        self.maxsize = maxsize
        self._buf: deque[Event | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.close_reason: str | None = None
        self.on_close: Callable[[Listener], None] | None = None
        #: Set by a consumer that can write an item at once (the SSE response): while
        #: the consumer waits with nothing buffered, ``push`` hands items straight to it
        #: (``True``: taken) instead of buffering them and waking the consumer's task,
        #: a task switch per event and listener saved on the hottest path.
        self.writer: Callable[[Event | bytes], bool] | None = None
        #: (epoch, id) per channel: where this listener is. Only kept up to date
        #: for multi-channel listeners, which need it for their ``id:`` line.
        self.cursor: list[tuple[str, str]] = (
            list(cursor) if cursor else [(ORIGIN_EPOCH, ORIGIN_ID)] * len(self.channels)
        )
        #: While resuming: per channel, live events at or below this key were
        #: already replayed from history and are dropped (the seam).
        self._floors: dict[str, tuple[str, tuple[int, int]]] | None = None

    # --- producer side (never awaits) ---

    def push(self, item: Event | bytes) -> bool:
        """Take ``item``; ``True`` when the ``writer`` wrote it at once (else it is
        buffered for the consumer, or dropped: closed, below the floor, a second ping)."""
        if self.close_reason is not None:
            return False
        if isinstance(item, Event) and self._floors is not None and self._below_floor(item):
            return False
        waiter = self._waiter
        if (
            self.writer is not None
            and waiter is not None
            and not waiter.done()
            and not self._buf
            and self.writer(item)
        ):
            return True
        if item is PING:
            if self._buf and self._buf[-1] is PING:
                return False  # one pending ping is enough; a stuck reader gains no more
        elif len(self._buf) >= self.maxsize:
            self.close("slow")
            return False
        self._buf.append(item)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return False

    def _below_floor(self, event: Event) -> bool:
        assert self._floors is not None
        floor = self._floors.get(event.channel)
        return floor is not None and floor[0] == event.epoch and event.key <= floor[1]

    def start_at(self, index: int, epoch: str, event_id: str) -> None:
        """Place a channel no event was written for yet at a known position (a stream
        opened without ``Last-Event-ID`` starts at the end of each channel)."""
        if self.cursor[index][0] == ORIGIN_EPOCH:
            self.cursor[index] = (epoch, event_id)

    def replay(
        self, channel: str, items: Sequence[Event], floor: tuple[str, tuple[int, int]] | None
    ) -> None:
        """Put events read from history in front of the live ones buffered meanwhile.

        The listener was registered before history was read (so nothing falls
        between the two); live events at or below ``floor`` (the newest replayed)
        are duplicates of the replay: those buffered are dropped now, later ones
        on arrival.
        """
        if self.close_reason is not None:
            return
        if floor is not None:
            if self._floors is None:
                self._floors = {}
            self._floors[channel] = floor
            # Only this channel's items: another channel's replay, already in
            # front, sits below *its own* floor and must stay.
            self._buf = deque(
                item
                for item in self._buf
                if not (
                    isinstance(item, Event) and item.channel == channel and self._below_floor(item)
                )
            )
        self._buf.extendleft(reversed(items))
        waiter = self._waiter
        if items and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, reason: str) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_close is not None:
            self.on_close(self)

    # --- consumer side ---

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def pending(self) -> int:
        return len(self._buf)

    async def next_batch(self) -> list[Event | bytes]:
        """Everything buffered, at least one item; raises ListenerClosed when closed.

        Buffered items are handed out even after close (a clean close delivers
        what was already accepted), except after an overflow, where the client
        resumes from history anyway.
        """
        while not self._buf:
            if self.close_reason is not None:
                raise ListenerClosed(self.close_reason)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.close_reason == "slow":
            raise ListenerClosed("slow")
        items = list(self._buf)
        self._buf.clear()
        return items

    def encode(self, items: Iterable[Event | bytes]) -> bytes:
        """The bytes to write for a batch of items."""
        if len(self.channels) == 1:
            return b"".join(item.frame if isinstance(item, Event) else item for item in items)
        parts: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                parts.append(item)
                continue
            if item.id:
                index = self.channels.index(item.channel)
                self.cursor[index] = (item.epoch, item.id)
                parts.append(b"id: " + format_cursor(self.cursor).encode() + b"\n")
            parts.append(item.data)
        return b"".join(parts)


async def envelopes(listener: Listener) -> AsyncGenerator[dict[str, Any], None]:
    """A listener's events as envelopes (the seed's ``subscribe`` generators), until it
    is closed; heartbeats and id-only markers are not events."""
    while True:
        try:
            batch = await listener.next_batch()
        except ListenerClosed:
            return
        for item in batch:
            if isinstance(item, Event) and not item.id_only:
                yield item.envelope()


def format_cursor(cursor: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{epoch}.{event_id}" for epoch, event_id in cursor)


class LocalHub:
    """Channel -> listeners, for one process.

    ``on_first`` runs (synchronously: it may only schedule work) when a channel
    gets its first listener, ``on_last`` when it loses its last one: the Redis
    manager subscribes and unsubscribes there. ``on_written(event, n)``: ``n``
    listeners' writers wrote ``event`` as it was dispatched (once per event rather
    than once per listener: the bus counts deliveries there). Registration never awaits between
    the check and the insert, so listeners that join at once cannot overwrite
    each other (the encode/broadcaster race).
    """

    def __init__(
        self,
        on_first: Callable[[str], None] | None = None,
        on_last: Callable[[str], None] | None = None,
    ) -> None:
        self._channels: dict[str, dict[Listener, None]] = {}
        self.on_first = on_first
        self.on_last = on_last
        self.on_written: Callable[[Event, int], None] | None = None
        self.dropped_slow = 0

    def add(self, listener: Listener) -> None:
        for channel in listener.channels:
            listeners = self._channels.get(channel)
            if listeners is None:
                listeners = self._channels[channel] = {}
                if self.on_first is not None:
                    self.on_first(channel)
            listeners[listener] = None
        listener.on_close = self._on_listener_close

    def remove(self, listener: Listener) -> None:
        for channel in listener.channels:
            listeners = self._channels.get(channel)
            if listeners is None or listener not in listeners:
                continue
            del listeners[listener]
            if not listeners:
                del self._channels[channel]
                if self.on_last is not None:
                    self.on_last(channel)

    def _on_listener_close(self, listener: Listener) -> None:
        if listener.close_reason == "slow":
            self.dropped_slow += 1
            logger.warning(
                "listener on %s dropped: %d events behind (SSE_QUEUE_MAXSIZE); it resumes "
                "from history when its client reconnects",
                ",".join(listener.channels),
                listener.maxsize,
            )
        self.remove(listener)

    def dispatch(self, event: Event) -> int:
        listeners = self._channels.get(event.channel)
        if not listeners:
            return 0
        # A listener may close (overflow) during the loop and leave the dict.
        written = 0
        for listener in tuple(listeners):
            if listener.push(event):
                written += 1
        if written and self.on_written is not None:
            self.on_written(event, written)
        return len(listeners)

    def has(self, channel: str) -> bool:
        return channel in self._channels

    def channels(self) -> list[str]:
        return list(self._channels)

    def listeners(self, channel: str) -> list[Listener]:
        return list(self._channels.get(channel, ()))

    def registry(self) -> dict[str, list[Listener]]:
        return {channel: list(listeners) for channel, listeners in self._channels.items()}

    def count(self) -> int:
        return len({listener for group in self._channels.values() for listener in group})

    def close_all(self, reason: str) -> None:
        for listener in {ls for group in self._channels.values() for ls in group}:
            listener.close(reason)

    def broadcast_ping(self) -> None:
        for listeners in self._channels.values():
            for listener in listeners:
                listener.push(PING)
