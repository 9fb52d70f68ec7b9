"""Where a resuming listener's missed events come from.

Both modes answer the same question: "what came on this channel after
(epoch, id)?" The answer is either the events, in order, or :data:`RESET`
when the position cannot be honoured (another epoch: Redis came back empty or
the history expired; or older than the history kept) so that the client
refetches instead of living with a silent gap.
"""

from __future__ import annotations

import secrets
import string
import time
from collections import deque
from dataclasses import dataclass

from infrastructure.bus.event import ORIGIN_EPOCH, ORIGIN_ID, Event, id_key
from infrastructure.bus.listener import Listener
from infrastructure.events import EventType, build_envelope, dumps

_EPOCH_ALPHABET = string.digits + string.ascii_lowercase


def new_epoch() -> str:
    """A generation id for a channel's history: 10 base-36 characters."""
    return "".join(secrets.choice(_EPOCH_ALPHABET) for _ in range(10))


@dataclass(frozen=True, slots=True)
class Replay:
    events: list[Event]
    #: The client's position cannot be honoured: send ``reset``, then live events.
    reset: bool = False


def judge_replay(
    requested_epoch: str,
    requested_id: str,
    current_epoch: str | None,
    first_kept: tuple[int, int] | None,
    max_deleted: tuple[int, int],
) -> bool:
    """True when resuming from (requested_epoch, requested_id) would leave a gap.

    ``first_kept`` is the oldest entry still in history (None: history empty),
    ``max_deleted`` the newest id trimmed away ((0, 0): nothing trimmed).
    """
    if requested_epoch == ORIGIN_EPOCH:
        # The client saw nothing of this channel: everything kept is new to it,
        # unless something was already trimmed.
        return max_deleted != (0, 0)
    if current_epoch is None:
        # The channel has no history at all now (expired, or Redis came back
        # empty) but the client saw some of it: what happened in between is lost.
        return True
    if requested_epoch != current_epoch:
        return True
    return id_key(requested_id) < max_deleted


class MemoryHistory:
    """The in-memory twin of the Redis Streams history, for one process."""

    def __init__(self, maxlen: int, ttl_seconds: float) -> None:
        self._maxlen = maxlen
        self._ttl = ttl_seconds
        self._channels: dict[str, _ChannelLog] = {}

    def append(self, channel: str, body: bytes) -> Event:
        log = self._channels.get(channel)
        now = time.time()
        if log is None or log.expires_at <= now:
            log = self._channels[channel] = _ChannelLog(new_epoch(), self._maxlen)
        log.expires_at = now + self._ttl
        event = Event(channel, log.epoch, log.next_id(), body)
        log.append(event)
        return event

    def position(self, channel: str) -> tuple[str, str] | None:
        log = self._live(channel)
        if log is None or not log.events:
            return None
        return log.epoch, log.events[-1].id

    def after(self, channel: str, epoch: str, event_id: str) -> Replay:
        log = self._live(channel)
        if log is None:
            return Replay([], reset=epoch != ORIGIN_EPOCH)
        first = log.events[0].key if log.events else None
        if judge_replay(epoch, event_id, log.epoch, first, log.max_deleted):
            return Replay(list(log.events), reset=True)
        floor = id_key(event_id) if epoch != ORIGIN_EPOCH else (0, 0)
        return Replay([event for event in log.events if event.key > floor])

    def _live(self, channel: str) -> _ChannelLog | None:
        log = self._channels.get(channel)
        if log is not None and log.expires_at <= time.time():
            del self._channels[channel]
            return None
        return log

    def clear(self) -> None:
        self._channels.clear()


class _ChannelLog:
    __slots__ = ("_last", "epoch", "events", "expires_at", "max_deleted")

    def __init__(self, epoch: str, maxlen: int) -> None:
        self.epoch = epoch
        self.events: deque[Event] = deque(maxlen=maxlen)
        self.max_deleted: tuple[int, int] = (0, 0)
        self.expires_at = 0.0
        self._last: tuple[int, int] = (0, 0)

    def next_id(self) -> str:
        # Like Redis stream ids: milliseconds, then a sequence within the millisecond.
        ms = int(time.time() * 1000)
        seq = self._last[1] + 1 if ms <= self._last[0] else 0
        ms = max(ms, self._last[0])
        self._last = (ms, seq)
        return f"{ms}-{seq}"

    def append(self, event: Event) -> None:
        if self.events.maxlen is not None and len(self.events) == self.events.maxlen:
            self.max_deleted = self.events[0].key
        self.events.append(event)


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
