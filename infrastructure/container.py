"""The composition root: every shared resource of a process, built in one place.

:func:`build_container` makes, from :class:`~infrastructure.config.Settings` and
nothing else, the Redis connections (the bus's pipelined connection and the command
pool), the SSE bus on them, the session store on the same connections, and the
limits (stream slots, the rate limiter). Nothing connects until
:meth:`Container.start`; :meth:`Container.close` closes what was built, in reverse.

The app's lifespan installs its container as the process's one
(:func:`install`), which the seed's module functions (``enqueue_sse_message``,
``get_redis_sse_manager``, ...) read; there is no other process-wide registry.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infrastructure.bus.api import BusStats, SseBus
from infrastructure.config import Settings, get_settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from infrastructure.attachments.service import AttachmentService
    from infrastructure.auth.limits import StreamSlots
    from infrastructure.auth.rate_limit import RateLimiter
    from infrastructure.bus.redis.manager import RedisSseManager
    from infrastructure.bus.redis.pipe import CommandPipe
    from infrastructure.desk.base import Desk
    from infrastructure.desk.monitor import DeskMonitor
    from infrastructure.desk.service import DeskService
    from infrastructure.sessions import SessionStore


@dataclass(eq=False)
class Container:
    """What a process shares: built by :func:`build_container`."""

    settings: Settings
    bus: SseBus
    store: SessionStore
    slots: StreamSlots
    rate_limiter: RateLimiter
    #: The Redis connections (None in memory mode): the bus's pipelined one, which
    #: also carries the store's per-request reads, and the command pool.
    pipe: CommandPipe | None = None
    pool: aioredis.Redis | None = None
    #: The desk (presence, assignment, the sweep) and this replica's part of it: built for
    #: a service (``build_container(settings, service=...)``), not for a bare bus.
    desk: DeskService | None = None
    presence: DeskMonitor | None = None
    #: Files sent in chats (built for a service, with its desk).
    attachments: AttachmentService | None = None
    started: bool = False

    @property
    def manager(self) -> RedisSseManager | None:
        """The bus's Redis side, once started (the seed's ``get_redis_sse_manager()``)."""
        return self.bus.manager

    async def start(self) -> None:
        """Connect (in Redis mode: returns once Redis answered, or at once if it does
        not; the bus keeps trying and serves local listeners meanwhile)."""
        if not self.started:
            self.started = True
            await self.bus.start()
            if self.presence is not None:
                self.presence.start()

    async def close(self) -> None:
        if self.presence is not None:
            await self.presence.stop()
        await self.bus.stop()
        if self.pipe is not None:
            await self.pipe.close()
        if self.pool is not None:
            await self.pool.aclose()

    def state(self) -> dict[str, Any]:
        """What the app keeps on ``app.state`` (the keys handlers and the fast path read)."""
        state: dict[str, Any] = {
            "bus": self.bus,
            "store": self.store,
            "stream_slots": self.slots,
            "rate_limiter": self.rate_limiter,
        }
        if self.desk is not None:
            state |= {"desk": self.desk, "presence": self.presence}
        if self.attachments is not None:
            state["attachments"] = self.attachments
        return state


def build_container(settings: Settings | None = None, service: str | None = None) -> Container:
    """Every shared resource of a process, from ``settings`` (no I/O: nothing connects
    until :meth:`Container.start`); with a ``service`` name, its desk too."""
    # Imported here: the seed's module functions import this module, and memory mode
    # imports nothing of redis (the seed's 延迟加载).
    from infrastructure.auth.limits import StreamSlots
    from infrastructure.auth.rate_limit import MemoryRateLimiter
    from infrastructure.sessions.memory import InMemorySessionStore
    from infrastructure.sessions.record_log import RecordLog

    settings = settings or get_settings()
    slots = StreamSlots.from_settings(settings)
    limiter = MemoryRateLimiter(settings.RATE_LIMIT_PER_MINUTE, settings.RATE_LIMIT_BURST)
    if not settings.USE_REDIS_SSE:
        # The record stream's twin: the store appends every change, the archiver reads.
        record_log = RecordLog(settings.RECORD_STREAM_MAXLEN)
        memory_store = InMemorySessionStore(
            ttl_seconds=settings.SESSION_TTL_SECONDS, record=record_log
        )
        container = Container(settings, SseBus(settings), memory_store, slots, limiter)
        if service is not None:
            from infrastructure.desk.memory_desk import InMemoryDesk

            _add_desk(container, InMemoryDesk(memory_store, settings), service)
        return container
    from infrastructure.bus.redis.manager import RedisSseManager
    from infrastructure.bus.redis.pool import make_bus_pipe, make_redis_client
    from infrastructure.sessions.redis_store import RedisSessionStore
    from infrastructure.webhooks.emit import build_outbox

    # The bus's connection: publishes, subscriptions, and the reads every stream
    # opened makes. The pool: everything else (session changes, replays); redis-py
    # retries its commands once on a stale connection. With Sentinel, both connect to
    # the primary the sentinels name (``primary`` tells the pipe where it is).
    pipe, primary = make_bus_pipe(settings)
    pool = make_redis_client(settings, "commands")
    stats = BusStats()
    manager = RedisSseManager(settings, counter=stats, pipe=pipe, redis=pool, primary=primary)
    # A service's outgoing webhooks leave with its bus's events (WEBHOOKS set, Redis mode).
    webhooks = build_outbox(pool, settings) if service is not None else None
    bus = SseBus(settings, redis=manager, stats=stats, webhooks=webhooks)
    store = RedisSessionStore(pool, settings, reads=pipe)
    container = Container(settings, bus, store, slots, limiter, pipe=pipe, pool=pool)
    if service is not None:
        from infrastructure.desk.redis_desk import RedisDesk

        replica = f"{service}:{os.getpid()}:{secrets.token_hex(4)}"
        _add_desk(container, RedisDesk(pool, settings, replica), service)
    return container


def _add_desk(container: Container, desk: Desk, service: str) -> None:
    from infrastructure.attachments.service import AttachmentService
    from infrastructure.attachments.store import LocalAttachmentStore
    from infrastructure.desk.monitor import DeskMonitor
    from infrastructure.desk.service import DeskService

    settings = container.settings
    container.desk = DeskService(container.bus, container.store, desk, settings, service)
    container.presence = DeskMonitor(container.desk)
    container.attachments = AttachmentService(
        LocalAttachmentStore(settings.ATTACHMENTS_DIR),
        container.bus,
        container.store,
        settings.ATTACHMENT_MAX_BYTES,
        service,
    )


# --- the process's container (the one registry) ---

_current: Container | None = None


def install(container: Container | None) -> None:
    """Make ``container`` the process's (``None``: none)."""
    global _current
    _current = container


def current() -> Container | None:
    return _current


def uninstall(container: Container) -> None:
    """Forget ``container`` if it is the process's."""
    global _current
    if _current is container:
        _current = None
