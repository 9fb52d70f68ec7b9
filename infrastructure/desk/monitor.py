"""This replica's part of presence: which agents and customers have a live stream here.

A stream opened by an agent *enters* (the first one of that agent on this replica writes
its presence entry at once) and its close *leaves* (the last one removes it). Customers'
streams are written in batches with each tick. Every ``DESK_TICK_SECONDS`` the replica
refreshes its entries (so they expire when it crashes) and runs the desk's sweep; each
replica does, and each sweep is atomic.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError

from infrastructure.auth.tokens import AGENT_ROLE, CUSTOMER_ROLE, Principal
from infrastructure.bus.waiting import stop_task

from .models import PresenceKind
from .service import DeskService

logger = logging.getLogger(__name__)

_Key = tuple[PresenceKind, str]
#: Customers refreshed per script call (a long script would hold Redis up).
_BATCH = 1000


def _presence_key(principal: Principal) -> _Key | None:
    if principal.role is AGENT_ROLE:
        return ("agent", principal.subject)
    if principal.role is CUSTOMER_ROLE:
        return ("customer", principal.subject)
    return None


class DeskMonitor:
    def __init__(self, service: DeskService) -> None:
        self.service = service
        self._open: Counter[_Key] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def enter(self, principal: Principal) -> Callable[[], None]:
        """A stream of ``principal`` opened here; call what it returns when it closes."""
        key = _presence_key(principal)
        if key is None:
            return _nothing
        self._open[key] += 1
        # An agent counts at once (assignment starts when it comes online); a customer's
        # stream is written with the next tick, in one batch (thousands open at once).
        if self._open[key] == 1 and key[0] == "agent":
            self._spawn(self._enter(key))
        released = False

        def leave() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._open[key] -= 1
            if self._open[key] <= 0:
                del self._open[key]
                if key[0] == "agent":
                    self._spawn(self._leave(key))

        return leave

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enter(self, key: _Key) -> None:
        kind, ident = key
        with _reported(f"presence of {kind} {ident}"):
            await self.service.presence_changed(await self.service.desk.enter(kind, [ident]))

    async def _leave(self, key: _Key) -> None:
        kind, ident = key
        if key in self._open:  # reopened meanwhile (a page reload)
            return
        with _reported(f"presence of {kind} {ident}"):
            await self.service.presence_changed(await self.service.desk.leave(kind, [ident]))

    # --- the periodic work ------------------------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            await stop_task(task)
        self._loop_task = None

    async def tick(self) -> None:
        """Refresh this replica's entries, then sweep (and assign)."""
        desk = self.service.desk
        agents = [ident for kind, ident in self._open if kind == "agent"]
        customers = [ident for kind, ident in self._open if kind == "customer"]
        await self.service.presence_changed(await desk.enter("agent", agents))
        # A customer whose stream closed here is not refreshed: its entry expires after
        # PRESENCE_TTL_SECONDS, and the abandon period counts from then.
        for start in range(0, len(customers), _BATCH):
            await desk.enter("customer", customers[start : start + _BATCH])
        await self.service.tick()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.service.settings.DESK_TICK_SECONDS)
            with _reported("desk tick"):
                await self.tick()


@contextmanager
def _reported(what: str) -> Iterator[None]:
    """Log and swallow what Redis or the network raised: the next tick tries again."""
    try:
        yield
    except (RedisError, OSError) as error:
        logger.warning("desk: %s failed (%r); retried next tick", what, error)


def _nothing() -> None:
    return None
