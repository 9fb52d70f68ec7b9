"""The seed's ``infrastructure/bootstrap/sse.py``: its names, over the bus package.

``enqueue_sse_message(target, payload)`` and ``subscribe_sse_events(target)`` use the
process's bus (:class:`~infrastructure.bus.api.SseBus`, built by the composition root,
:mod:`infrastructure.container`). With ``USE_REDIS_SSE`` (the default) events cross
processes through Redis; without it, or while Redis is unreachable, listeners of this
process are still served at once (the seed's 降级 mode). Callers never know which mode
is active.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from infrastructure import container as process
from infrastructure.bus.api import BusStats, SseBus
from infrastructure.bus.listener import Listener, envelopes
from infrastructure.config import get_settings
from infrastructure.events import EventType, Target, build_envelope, dumps

if TYPE_CHECKING:
    from infrastructure.bus.redis.manager import RedisSseManager

#: The seed's switch, read once from the environment through Settings.
USE_REDIS_SSE: bool = get_settings().USE_REDIS_SSE

_ENVELOPE_KEYS = frozenset({"type", "payload", "timestamp", "source"})


def get_sse_bus() -> SseBus:
    """The process's bus: its container's; without one, a container is built from
    Settings and installed (its bus serves from memory until started)."""
    container = process.current()
    if container is None:
        container = process.build_container()
        process.install(container)
    return container.bus


def _get_redis_sse_manager() -> RedisSseManager | None:
    return get_sse_bus().manager


# --- the seed's functions ---


def _split_payload(
    payload: Mapping[str, Any], event_type: str | None
) -> tuple[str, Any, str | None]:
    """Accept the seed's call ``enqueue_sse_message(name, {"type": ..., "payload": ...})``
    as well as a bare payload with ``event_type=``."""
    if event_type is None and "type" in payload and set(payload) <= _ENVELOPE_KEYS:
        return str(payload["type"]), payload.get("payload", {}), payload.get("source")
    return event_type or EventType.NOTIFICATION, payload, None


async def enqueue_sse_message(
    target: str | Target,
    payload: Mapping[str, Any],
    *,
    event_type: str | None = None,
    source: str | None = None,
) -> str:
    """Publish an event to ``target``; returns its id (``<epoch>.<ms>-<seq>``, or ""
    while it waits in the outbox)."""
    kind, body, given_source = _split_payload(payload, event_type)
    event = await get_sse_bus().publish(target, kind, dict(body), source or given_source)
    return event.token if event.id else ""


async def subscribe_sse_events(
    target: str | Target, last_event_id: str | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """The envelopes published to ``target`` from now on (or after ``last_event_id``)."""
    # aclosing: closing this generator releases the listener at once, not at the
    # next garbage collection.
    async with contextlib.aclosing(get_sse_bus().subscribe(target, last_event_id)) as events:
        async for envelope in events:
            yield envelope


async def _enqueue_to_memory(target: str | Target, payload: Mapping[str, Any]) -> str:
    bus = get_sse_bus()
    kind, body, source = _split_payload(payload, None)
    envelope = build_envelope(kind, dict(body), source or bus.settings.SERVICE_NAME)
    return bus.publish_to_memory(bus.channel(target), dumps(envelope)).token


async def _subscribe_from_memory(target: str | Target) -> AsyncGenerator[dict[str, Any], None]:
    bus = get_sse_bus()
    listener = Listener([bus.channel(target)], bus.settings.SSE_QUEUE_MAXSIZE, owner=bus.hub)
    bus.hub.add(listener)
    try:
        async with contextlib.aclosing(envelopes(listener)) as events:
            async for envelope in events:
                yield envelope
    finally:
        bus.close(listener)


def get_sse_queues() -> dict[str, list[Listener]]:
    """Channel -> the bounded listener queues of this process."""
    return get_sse_bus().hub.registry()


def get_or_create_sse_queue(target: str | Target) -> Listener:
    """A new listener queue on ``target`` (close it with :func:`remove_sse_queue`)."""
    bus = get_sse_bus()
    listener = Listener([bus.channel(target)], bus.settings.SSE_QUEUE_MAXSIZE, owner=bus.hub)
    bus.hub.add(listener)
    return listener


def remove_sse_queue(target: str | Target) -> int:
    """Close every listener of ``target`` in this process; returns how many."""
    bus = get_sse_bus()
    listeners = bus.hub.listeners(bus.channel(target))
    for listener in listeners:
        bus.close(listener)
    return len(listeners)


__all__ = [
    "USE_REDIS_SSE",
    "BusStats",
    "SseBus",
    "_enqueue_to_memory",
    "_get_redis_sse_manager",
    "_subscribe_from_memory",
    "enqueue_sse_message",
    "get_or_create_sse_queue",
    "get_sse_bus",
    "get_sse_queues",
    "remove_sse_queue",
    "subscribe_sse_events",
]
