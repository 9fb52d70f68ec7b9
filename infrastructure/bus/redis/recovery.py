"""Catching up from the Streams: what a reconnect, or a resuming client, missed.

* After the subscriber reconnects, each followed channel is read from its Stream
  after the last position seen here (:meth:`Recovery.catch_up`): what was published
  while this process was away reaches its listeners, in order, once.
* A client that resumes with ``Last-Event-ID`` gets what came after its cursor
  (:meth:`Recovery.replay_into`), ahead of live events, or a ``reset`` when its
  position is gone. While Redis is away its replay waits (:meth:`Recovery.defer`) and
  runs once the subscriber is back (:meth:`Recovery.replay_deferred`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from infrastructure.bus.event import Event
from infrastructure.bus.history import Replay, deliver_replay
from infrastructure.bus.listener import Listener
from infrastructure.bus.redis.positions import ChannelPositions
from infrastructure.bus.redis.streams import StreamHistory

logger = logging.getLogger(__name__)


class Recovery:
    def __init__(self, history: StreamHistory, positions: ChannelPositions) -> None:
        self._history = history
        self._positions = positions
        self._deferred: dict[Listener, list[tuple[str, str]]] = {}

    async def catch_up(self, channels: Sequence[str], deliver: Callable[[Event], None]) -> None:
        """Deliver what each channel received while the subscriber was away."""
        for channel in channels:
            position = self._positions.of(channel)
            if position is None:
                continue
            epoch, key = position
            replay = await self._history.after(channel, epoch, f"{key[0]}-{key[1]}")
            if replay.reset:
                # Redis came back empty, or trimmed past us: deliver what there is,
                # and say that something may be missing.
                logger.warning("events of %s may be lost: its history restarted", channel)
            for event in replay.events:
                deliver(event)

    async def replay_into(
        self, listener: Listener, cursor: Sequence[tuple[str, str]]
    ) -> list[Replay]:
        replays: list[Replay] = []
        for channel, (epoch, event_id) in zip(listener.channels, cursor, strict=True):
            replay = await self._history.after(channel, epoch, event_id)
            replays.append(replay)
            deliver_replay(listener, channel, replay)
        return replays

    def defer(self, listener: Listener, cursor: Sequence[tuple[str, str]]) -> None:
        """History is out of reach: replay into ``listener`` when Redis is back."""
        self._deferred[listener] = list(cursor)

    def forget(self, listener: Listener) -> None:
        self._deferred.pop(listener, None)

    async def replay_deferred(self) -> None:
        deferred, self._deferred = self._deferred, {}
        for listener, cursor in deferred.items():
            if not listener.closed:
                await self.replay_into(listener, cursor)
