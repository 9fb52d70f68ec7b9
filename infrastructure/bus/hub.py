"""Local fan-out: one process's listeners, grouped by channel.

Both bus modes feed this hub. In Redis mode, the single subscriber connection
hands every message it reads to :meth:`LocalHub.dispatch`; in memory mode,
``publish`` does. Nothing here awaits on the hot path: dispatch appends one
shared :class:`~infrastructure.bus.event.Event` to each listener's bounded
buffer and wakes it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener

logger = logging.getLogger(__name__)


class ChannelWatcher(Protocol):
    """Told when a channel gets its first listener in this process and when it loses
    its last one (the Redis side subscribes and unsubscribes there). Called
    synchronously: it may only schedule work."""

    def channel_opened(self, channel: str) -> None: ...

    def channel_closed(self, channel: str) -> None: ...


class DeliveryCounter(Protocol):
    """Told that ``listeners`` writers wrote ``event`` as it was dispatched (once per
    event rather than once per listener: the bus counts deliveries there)."""

    def count_event(self, event: Event, listeners: int = 1) -> None: ...


class LocalHub:
    """Channel -> listeners, for one process.

    Its ``watcher`` hears of channels opened and closed, its ``counter`` of events
    written at once; both are given at construction. Registration never awaits
    between the check and the insert, so listeners that join at once cannot
    overwrite each other (the encode/broadcaster race).
    """

    def __init__(
        self, watcher: ChannelWatcher | None = None, counter: DeliveryCounter | None = None
    ) -> None:
        self._channels: dict[str, dict[Listener, None]] = {}
        self._watcher = watcher
        self._counter = counter
        self.dropped_slow = 0

    def add(self, listener: Listener) -> None:
        """Register ``listener``, made for this hub (``Listener(..., owner=hub)``: it
        leaves by itself when it closes)."""
        if listener.owner is not self:
            raise ValueError("a listener joins the hub it was made for (owner=hub)")
        for channel in listener.channels:
            listeners = self._channels.get(channel)
            if listeners is None:
                listeners = self._channels[channel] = {}
                if self._watcher is not None:
                    self._watcher.channel_opened(channel)
            listeners[listener] = None

    def remove(self, listener: Listener) -> None:
        for channel in listener.channels:
            listeners = self._channels.get(channel)
            if listeners is None or listener not in listeners:
                continue
            del listeners[listener]
            if not listeners:
                del self._channels[channel]
                if self._watcher is not None:
                    self._watcher.channel_closed(channel)

    def listener_closed(self, listener: Listener) -> None:
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
        if written and self._counter is not None:
            self._counter.count_event(event, written)
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
