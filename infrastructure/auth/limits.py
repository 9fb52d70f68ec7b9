"""Abuse limits: open streams and JSON depth (the message rate: ``rate_limit.py``).

Both are per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, status
from starlette.datastructures import State

from infrastructure.auth.dependencies import SettingsDep
from infrastructure.auth.tokens import Principal
from infrastructure.config import Settings

T = TypeVar("T")

# =============================================================================================
# (1) Open streams: per token and per process
# =============================================================================================


class StreamSlot:
    """One open stream. Release it when the stream ends: ``with slot:`` or :meth:`release`
    (the SSE response releases it as it ends). Releasing twice is harmless, and a slot that
    is dropped unreleased (a response whose body never started, so its ``finally`` never
    ran) is released when it is garbage-collected instead of leaking the count forever."""

    __slots__ = ("_key", "_slots")

    def __init__(self, slots: StreamSlots, key: str) -> None:
        self._slots: StreamSlots | None = slots
        self._key = key

    @property
    def released(self) -> bool:
        return self._slots is None

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._release(self._key)

    def __del__(self) -> None:
        # Dropped unreleased: released now. ``__del__`` rather than ``weakref.finalize``,
        # whose registration cost every stream opened some 5,000 instructions.
        self.release()

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> StreamSlot:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class StreamSlots:
    """Counts open streams per token (``jti``) and in total.

    :meth:`acquire` raises *before* the response starts, so that the refusal is a real HTTP
    status: 429 when this token already holds ``max_per_token`` streams (its own doing: a tab
    storm, a reconnect loop), 503 when the process holds ``max_total`` (protects everyone's
    memory and file descriptors). Both carry ``Retry-After``.

    Usage in a route::

        slot = slots.acquire(principal)            # may raise 429 / 503
        return EventStreamResponse(bus, listener, on_close=slot.release)
    """

    def __init__(self, max_per_token: int, max_total: int, retry_after_seconds: int = 5) -> None:
        if max_per_token < 1 or max_total < 1:
            raise ValueError("stream limits must be at least 1")
        self.max_per_token = max_per_token
        self.max_total = max_total
        self.retry_after_seconds = retry_after_seconds
        self._per_key: dict[str, int] = {}
        self._total = 0
        # Normally everything happens on the event loop, but a garbage-collection release can
        # run in whatever thread triggers the collection.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamSlots:
        return cls(settings.MAX_STREAMS_PER_TOKEN, settings.MAX_STREAMS_TOTAL)

    @property
    def total(self) -> int:
        return self._total

    def acquire(self, principal: Principal) -> StreamSlot:
        key = principal.token_id
        with self._lock:
            if self._per_key.get(key, 0) >= self.max_per_token:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    detail="too many open streams for this token",
                    headers=self._retry_after(),
                )
            if self._total >= self.max_total:
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    detail="too many open streams on this server",
                    headers=self._retry_after(),
                )
            self._per_key[key] = self._per_key.get(key, 0) + 1
            self._total += 1
        return StreamSlot(self, key)

    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}

    def _release(self, key: str) -> None:
        with self._lock:
            count = self._per_key.get(key, 0)
            if count <= 0:
                return
            if count == 1:
                del self._per_key[key]  # no entry per idle token: the dict stays small
            else:
                self._per_key[key] = count - 1
            self._total -= 1


async def get_stream_slots(request: Request, settings: SettingsDep) -> StreamSlots:
    """The process's :class:`StreamSlots`, kept on ``app.state.stream_slots`` (an app factory
    may put its own there first). ``async``: FastAPI would run a plain ``def`` in a worker
    thread, where two first requests could each create one."""
    return stream_slots_of(request.app.state, settings)


def stream_slots_of(state: State, settings: Settings) -> StreamSlots:
    """The app's :class:`StreamSlots` (``state`` is its ``app.state``), made on first use."""
    return state_value(state, "stream_slots", lambda: StreamSlots.from_settings(settings))


def state_value(state: State, key: str, make: Callable[[], T]) -> T:
    """``state[key]``, made by ``make`` on first use.

    By key: Starlette's State answers ``state.x`` from ``__getattr__``, after the
    normal lookup has made and dropped an AttributeError (each request paid it)."""
    try:
        value: T = state[key]
    except KeyError:
        value = state[key] = make()
    return value


StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]


# =============================================================================================
# (2) JSON depth
# =============================================================================================


class JSONTooDeep(ValueError):
    pass


#: What ``check_json_depth`` counts as a level (tuples too: a caller's own data).
_CONTAINERS = (dict, list, tuple)


def check_json_depth(obj: object, max_depth: int) -> None:
    """Raise :class:`JSONTooDeep` (a ``ValueError``) when ``obj`` nests more than
    ``max_depth`` objects/arrays (a scalar has depth 0, ``{}`` and ``[]`` depth 1).

    Iterative, so a hostile document cannot exhaust the Python stack while being checked; a
    document this deep would otherwise do so later, in whatever walks it recursively. Level
    by level, a scalar costing one ``isinstance``: every publish runs this, and a stack of
    (value, depth) pairs cost it 1.5 % more instructions (``bench --instructions``, a)."""
    level: list[Any] = [obj] if isinstance(obj, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
        below: list[Any] = []
        for container in level:
            for child in container.values() if isinstance(container, dict) else container:
                if isinstance(child, _CONTAINERS):
                    below.append(child)
        level = below
