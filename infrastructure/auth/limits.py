"""Abuse limits: open streams, message rate, JSON depth, and the ``Last-Event-ID`` format.

All of it is per process. Where that matters (the rate limit) the note is beside the code.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, HTTPException, Request, status
from starlette.datastructures import State

from infrastructure.auth.dependencies import CurrentPrincipal, SettingsDep
from infrastructure.auth.tokens import Principal
from infrastructure.config import Settings

logger = logging.getLogger(__name__)

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
        # whose registration cost every stream opened more (bench/README.md).
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
# (2) Message rate: a token bucket per token
# =============================================================================================


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    #: Seconds until the request would be allowed (0 when allowed).
    retry_after: float = 0.0


class RateLimiter(Protocol):
    async def hit(self, key: str, cost: float = 1.0) -> RateDecision: ...


class MemoryRateLimiter:
    """Token bucket per key, in this process: ``burst`` requests at once, refilled at
    ``per_minute``.

    NOTE: with N replicas behind a load balancer the effective limit is N times this, since
    each replica counts only what it sees (a bucket in Redis behind the same interface
    would be the shared variant; none is wired today).
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, time of last update). Ordered by last use so that, past max_keys,
        # the least recently used bucket goes first: it is the one most likely full again,
        # and forgetting a full bucket changes nothing.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def hit(self, key: str, cost: float = 1.0) -> RateDecision:
        return self.hit_sync(key, cost)

    def hit_sync(self, key: str, cost: float = 1.0) -> RateDecision:
        now = self._clock()
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - updated) * self.rate)
        if tokens >= cost:
            decision = RateDecision(True)
            tokens -= cost
        else:
            decision = RateDecision(False, (cost - tokens) / self.rate)
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return decision


def rate_limit_key(principal: Principal) -> str:
    # Per token: a new token (a new session, a new login) starts a new bucket; that is what
    # the issue asks for, and issuing tokens is itself an authenticated or cheap-to-limit step.
    return f"{principal.role}:{principal.token_id}"


async def enforce_rate_limit(limiter: RateLimiter, principal: Principal) -> None:
    decision = await limiter.hit(rate_limit_key(principal))
    if not decision.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="rate limit exceeded",
            headers={"Retry-After": str(max(1, math.ceil(decision.retry_after)))},
        )


async def get_rate_limiter(request: Request, settings: SettingsDep) -> RateLimiter:
    """The process's limiter, kept on ``app.state.rate_limiter``; in memory unless an app
    factory put another :class:`RateLimiter` there (the container puts this one)."""
    limiter: RateLimiter = state_value(
        request.app.state,
        "rate_limiter",
        lambda: MemoryRateLimiter(settings.RATE_LIMIT_PER_MINUTE, settings.RATE_LIMIT_BURST),
    )
    return limiter


async def get_rate_limited_principal(
    principal: CurrentPrincipal,
    limiter: Annotated[RateLimiter, Depends(get_rate_limiter)],
) -> Principal:
    await enforce_rate_limit(limiter, principal)
    return principal


#: For message endpoints: the Bearer caller, after charging its bucket (429 when empty).
#: Combine freely with ``SessionAccess`` etc.: FastAPI verifies the token once per request.
RateLimitedPrincipal = Annotated[Principal, Depends(get_rate_limited_principal)]


# =============================================================================================
# (3) JSON depth
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
    (value, depth) pairs cost it more (bench/README.md)."""
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
