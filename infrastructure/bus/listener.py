"""One consumer of the bus: a bounded buffer of events, and how it is written out.

Producers (the hub) never await: :meth:`Listener.push` appends to the buffer, or
hands the item to the consumer's writer at once while the consumer waits with
nothing buffered. A listener that falls ``maxsize`` events behind is closed
(``"slow"``); its client resumes from history.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any, Protocol

from infrastructure.bus.cursor import format_cursor
from infrastructure.bus.event import ORIGIN_EPOCH, ORIGIN_ID, PING, Event


class ListenerClosed(Exception):
    """Raised by :meth:`Listener.next_batch` once the listener is closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ListenerOwner(Protocol):
    """What a listener belongs to (the hub): told when it closes, so it leaves."""

    def listener_closed(self, listener: Listener) -> None: ...


#: Writes one item at once; ``True`` when it did (see :meth:`Listener.consume`).
Writer = Callable[[Event | bytes], bool]


class Listener:
    """One consumer (an SSE response, or a ``subscribe()`` generator).

    Its buffer is bounded: a listener that falls ``maxsize`` events behind is
    closed with reason ``"slow"`` rather than let memory grow; its client
    resumes from history with its ``Last-Event-ID``. Its ``owner`` (the hub it
    joins) is given at construction and hears when it closes.
    """

    __slots__ = (
        "_buf",
        "_floors",
        "_on_closed",
        "_owner",
        "_waiter",
        "_writer",
        "channels",
        "close_reason",
        "cursor",
        "maxsize",
    )

    def __init__(
        self,
        channels: Sequence[str],
        maxsize: int,
        cursor: Sequence[tuple[str, str]] | None = None,
        owner: ListenerOwner | None = None,
    ) -> None:
        self.channels = tuple(channels)
        self.maxsize = maxsize
        self._owner = owner
        self._buf: deque[Event | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.close_reason: str | None = None
        #: The consumer's, while it writes at once (:meth:`consume`).
        self._writer: Writer | None = None
        self._on_closed: Callable[[Listener], None] | None = None
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
        writer = self._writer
        if (
            writer is not None
            and waiter is not None
            and not waiter.done()
            and not self._buf
            and writer(item)
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
        if self._owner is not None:
            self._owner.listener_closed(self)
        if self._on_closed is not None:
            self._on_closed(self)

    # --- the consumer that writes at once ---

    def consume(
        self, writer: Writer | None, on_closed: Callable[[Listener], None] | None = None
    ) -> None:
        """A consumer that can write an item at once (the SSE response): while it waits
        with nothing buffered, :meth:`push` hands items straight to ``writer`` (``True``:
        taken) instead of buffering them and waking the consumer's task, a task switch
        per event and listener saved on the hottest path. ``on_closed`` hears of the
        close (after the owner)."""
        self._writer = writer
        self._on_closed = on_closed

    def stop_consuming(self) -> None:
        self._writer = None
        self._on_closed = None

    @property
    def owner(self) -> ListenerOwner | None:
        return self._owner

    @property
    def consuming(self) -> bool:
        """A consumer writes at once (:meth:`consume`)."""
        return self._writer is not None

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
