"""The in-memory twins a use case runs on in a unit test: the session store and the bus
in memory mode (``USE_REDIS_SSE=false``), with listeners that show what was published."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from infrastructure.bus.api import SseBus
from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener
from infrastructure.desk.memory_desk import InMemoryDesk
from infrastructure.desk.service import DeskService
from infrastructure.events import Target
from infrastructure.sessions.memory import InMemorySessionStore
from tests.support.auth import make_settings


@dataclass
class Twins:
    bus: SseBus
    store: InMemorySessionStore
    #: The desk over the same twins (``manual`` assignment unless a test asks otherwise).
    desk: DeskService

    async def follow(self, *targets: Target) -> Listener:
        return await self.bus.open(list(targets))

    async def waiting(self, *names: str) -> None:
        """New chats ``names``, each escalated: in the queue, oldest first."""
        for name in names:
            await self.store.create(name)
            await self.store.escalate(name)

    async def held_by(self, name: str, agent: str) -> None:
        """A new chat ``name``, escalated and taken over by ``agent``."""
        await self.store.create(name)
        await self.store.escalate(name)
        await self.store.takeover(name, agent)


@asynccontextmanager
async def twins(**settings: Any) -> AsyncIterator[Twins]:
    config = make_settings(USE_REDIS_SSE=False, **{"ASSIGNMENT_MODE": "manual", **settings})
    bus = SseBus(config)
    await bus.start()
    store = InMemorySessionStore()
    desk = DeskService(bus, store, InMemoryDesk(store, config), config, "tests")
    try:
        yield Twins(bus, store, desk)
    finally:
        await bus.stop()


async def published(listener: Listener) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) of every event buffered in ``listener`` (memory mode delivers
    while the publisher runs: what a use case published is there when it returns)."""
    if not listener.pending():
        return []
    items: Sequence[Event | bytes] = await listener.next_batch()
    return [
        (item.type, item.envelope()["payload"])
        for item in items
        if isinstance(item, Event) and not item.id_only
    ]
