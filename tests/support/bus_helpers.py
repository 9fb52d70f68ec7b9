"""Helpers for the SSE bus tests: running buses, reading listeners, counting Redis subscribers.

Every wait here is bounded (``asyncio.timeout``) and fails with a description of what was
awaited and what arrived instead; nothing sleeps to wait for a condition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import redis
import redis.asyncio as aioredis

from infrastructure import container as process
from infrastructure.auth.limits import StreamSlots
from infrastructure.auth.rate_limit import MemoryRateLimiter
from infrastructure.bootstrap.sse import SseBus
from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener
from infrastructure.config import Settings
from infrastructure.container import Container
from infrastructure.sessions.memory import InMemorySessionStore

#: Reconnect quickly in tests (the defaults are for production).
FAST_RECONNECT: dict[str, Any] = {
    "REDIS_RECONNECT_MIN_SECONDS": 0.02,
    "REDIS_RECONNECT_MAX_SECONDS": 0.3,
    "REDIS_SOCKET_TIMEOUT_SECONDS": 1.0,
}


@asynccontextmanager
async def running_bus(settings: Settings) -> AsyncIterator[SseBus]:
    """A started :class:`SseBus`, stopped on exit whatever happens."""
    bus = SseBus(settings)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


@asynccontextmanager
async def process_bus(bus: SseBus) -> AsyncIterator[SseBus]:
    """Make ``bus`` the process's bus (what the seed's module functions use) for a while."""
    previous = process.current()
    process.install(
        Container(
            bus.settings,
            bus,
            InMemorySessionStore(),
            StreamSlots.from_settings(bus.settings),
            MemoryRateLimiter(bus.settings.RATE_LIMIT_PER_MINUTE, bus.settings.RATE_LIMIT_BURST),
        )
    )
    try:
        yield bus
    finally:
        process.install(previous)


def is_id_only(event: Event) -> bool:
    """An event that only moves the client's position (``id:`` without ``data:``): the
    local copy of an outbox event, sent once Redis gave it its id."""
    return bool(getattr(event, "id_only", False))


async def next_events(
    listener: Listener, count: int = 1, timeout: float = 5.0, *, id_only: list[Event] | None = None
) -> list[Event]:
    """At least ``count`` events from ``listener``: everything it handed out meanwhile, in
    order, without pings; id-only events are left out (appended to ``id_only`` if given).
    Fails naming what arrived if they do not come in time."""
    events: list[Event] = []
    try:
        async with asyncio.timeout(timeout):
            while len(events) < count:
                for item in await listener.next_batch():
                    if not isinstance(item, Event):
                        continue
                    if is_id_only(item):
                        if id_only is not None:
                            id_only.append(item)
                        continue
                    events.append(item)
    except TimeoutError:
        got = [(e.type, e.envelope()["payload"]) for e in events]
        raise AssertionError(
            f"expected {count} event(s) on {listener.channels} within {timeout}s, got {got}"
        ) from None
    return events


async def one_event(listener: Listener, timeout: float = 5.0) -> Event:
    """Exactly one event (fails if the listener hands out more)."""
    events = await next_events(listener, 1, timeout)
    assert len(events) == 1, [e.envelope() for e in events]
    return events[0]


def payloads(events: Iterable[Event]) -> list[dict[str, Any]]:
    return [e.envelope()["payload"] for e in events]


Envelopes = AsyncGenerator[dict[str, Any], None]


def as_generator(stream: AsyncIterator[dict[str, Any]]) -> Envelopes:
    """The seed's ``subscribe`` functions are async generators (annotated as iterators)."""
    return cast(Envelopes, stream)


async def next_envelope(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """``anext`` as a coroutine, for ``asyncio.create_task``."""
    return await anext(stream)


# --- Redis-side observation ---


def subscriber_clients(clients: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The connections of ``CLIENT LIST`` that are in pub/sub mode: subscribed to a
    channel or pattern (``sub``/``psub``/``ssub`` > 0, or the ``P`` flag)."""
    found = []
    for client in clients:
        subs = sum(int(client.get(key, 0) or 0) for key in ("sub", "psub", "ssub"))
        if subs > 0 or "P" in str(client.get("flags", "")):
            found.append(client)
    return found


async def subscriber_connections(client: aioredis.Redis) -> list[dict[str, Any]]:
    return subscriber_clients(await client.client_list())


async def numsub(client: aioredis.Redis, channels: Sequence[str]) -> dict[str, int]:
    """``PUBSUB NUMSUB`` of each channel (in batches: one command per 500 channels)."""
    counts: dict[str, int] = {}
    for start in range(0, len(channels), 500):
        chunk = channels[start : start + 500]
        for name, count in await client.pubsub_numsub(*chunk):
            key = name.decode() if isinstance(name, bytes) else str(name)
            counts[key] = int(count)
    return counts


def numsub_now(url: str, channels: Sequence[str]) -> dict[str, int]:
    """``PUBSUB NUMSUB`` with a blocking client: called from a coroutine, it answers
    without letting the event loop run, so it shows what Redis has *already* acknowledged
    at this point of the test (nothing the bus would still do in the background)."""
    client = redis.Redis.from_url(url)
    try:
        return {
            (name.decode() if isinstance(name, bytes) else str(name)): int(count)
            for name, count in client.pubsub_numsub(*channels)
        }
    finally:
        client.close()


# --- a raw SSE reader over httpx, for tests that look at every line ---


@dataclass
class RawSseEvent:
    id: str | None
    data: str
    received_at: float


@dataclass
class RawSseReader:
    """Reads an open ``httpx`` streaming response line by line, keeping comment lines
    (``: ping``) and their arrival times, and events with their ``id:``."""

    response: httpx.Response
    comments: list[tuple[str, float]] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None
    _id: str | None = None
    _data: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines = aiter(self.response.aiter_lines())

    async def next_item(self) -> RawSseEvent | str:
        """The next complete event, or the next comment line (as its text)."""
        assert self._lines is not None
        while True:
            line = await anext(self._lines)
            now = time.monotonic()
            if line.startswith(":"):
                self.comments.append((line, now))
                return line
            if line == "":
                if self._data:
                    event = RawSseEvent(self._id, "\n".join(self._data), now)
                    self._id, self._data = None, []
                    return event
                self._id = None
                continue
            field_name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field_name == "id":
                self._id = value
            elif field_name == "data":
                self._data.append(value)

    async def next_event(self, timeout: float = 5.0) -> RawSseEvent:
        """The next event, skipping comments."""
        async with asyncio.timeout(timeout):
            while True:
                item = await self.next_item()
                if isinstance(item, RawSseEvent):
                    return item
