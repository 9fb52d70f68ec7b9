"""Where this process is in each channel it follows: the cursors of the Redis side.

Per followed channel, two positions (epoch, id key):

* *last seen*: the newest event delivered here. Live events at or below it are
  duplicates (a catch-up and the live message can bring the same event) and are
  dropped; a catch-up after a reconnect starts there.
* *baseline*: where the channel's history ended when it was subscribed, read soon
  after the SUBSCRIBE is acknowledged. A catch-up starts there for a channel no event
  was seen on yet, and a stream opened without ``Last-Event-ID`` starts its ``id:``
  line there.

Both are forgotten when the channel loses its last listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from infrastructure.bus.event import ORIGIN_EPOCH, Event
from infrastructure.bus.listener import Listener
from infrastructure.bus.redis.streams import Position, StreamHistory
from infrastructure.bus.waiting import stop_task, wait_done
from redis.exceptions import RedisError


class ChannelPositions:
    """The positions of the channels this process follows (see the module)."""

    def __init__(self, history: StreamHistory, timeout: float) -> None:
        self._history = history
        self._timeout = timeout
        #: The channels that have listeners here.
        self._followed: set[str] = set()
        self._last_seen: dict[str, Position] = {}
        self._baseline: dict[str, Position] = {}
        #: Channels whose baseline is to be read, and what is set once it is.
        self._wanted: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None

    # --- following ---

    def follow(self, channel: str) -> None:
        self._followed.add(channel)

    def forget(self, channel: str) -> None:
        self._followed.discard(channel)
        self._last_seen.pop(channel, None)
        self._baseline.pop(channel, None)

    def of(self, channel: str) -> Position | None:
        """Where a catch-up of ``channel`` starts: the newest event seen, else the
        baseline; None when neither is known."""
        return self._last_seen.get(channel) or self._baseline.get(channel)

    def has_baseline(self, channel: str) -> bool:
        return channel in self._baseline

    # --- events ---

    def is_new(self, event: Event) -> bool:
        """Whether ``event`` comes after the newest seen on its channel; if it does, it
        becomes the newest (for a followed channel)."""
        channel = event.channel
        seen = self._last_seen.get(channel)
        if seen is not None and seen[0] == event.epoch and event.key <= seen[1]:
            return False
        if channel in self._followed:
            self._last_seen[channel] = (event.epoch, event.key)
        return True

    def start_at_end(self, listener: Listener) -> None:
        """A stream opened without ``Last-Event-ID`` starts at the current end of every
        channel: its ``id:`` lines name a real position for each, so a reconnect never
        replays what came before the first connection (a multi-channel id used to carry
        the origin for a quiet channel, and the reconnect replayed its whole history)."""
        for index, channel in enumerate(listener.channels):
            known = self.of(channel)
            if known is not None and known[0] != ORIGIN_EPOCH:
                epoch, (ms, seq) = known
                listener.start_at(index, epoch, f"{ms}-{seq}")

    # --- baselines ---

    def want(self, channel: str) -> asyncio.Future[None]:
        """Read the channel's history position soon, batched with other channels."""
        future = self._wanted.get(channel)
        if future is None:
            future = self._wanted[channel] = asyncio.get_running_loop().create_future()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_wanted())
        return future

    async def ensure_baseline(self, channels: Sequence[str], wait: bool = True) -> None:
        """Ask for each channel's history position and (with ``wait``: Redis is up)
        wait until it is known, bounded, so that a reconnect can catch the channel up
        even if no event was seen on it before Redis went away."""
        waits = [
            self.want(ch)
            for ch in channels
            if ch not in self._baseline and ch not in self._last_seen
        ]
        if waits and wait:
            await wait_done(waits, self._timeout)

    async def _read_wanted(self) -> None:
        # Loop: channels wanted while a read is in flight are read next round (their
        # waiters would otherwise wait for the timeout).
        while self._wanted:
            await asyncio.sleep(0)  # let the acks of one SUBSCRIBE batch gather first
            wanted, self._wanted = self._wanted, {}
            try:
                await self._read(list(wanted))
            finally:
                for future in wanted.values():
                    if not future.done():
                        future.set_result(None)

    async def _read(self, channels: list[str]) -> None:
        try:
            positions = await self._history.positions(channels)
        except (RedisError, OSError):
            return  # the subscriber meets the same error; a reconnect reads again
        for channel, position in zip(channels, positions, strict=True):
            if channel not in self._followed or channel in self._baseline:
                continue
            # No history yet: anything that appears later is new to us.
            self._baseline[channel] = position or (ORIGIN_EPOCH, (0, 0))

    def release_waiters(self) -> None:
        """Let every waiter go (Redis is away: its listeners are caught up later)."""
        for future in self._wanted.values():
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        if self._reader is not None:
            await stop_task(self._reader)
            self._reader = None
        self.release_waiters()
