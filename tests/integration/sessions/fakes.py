"""Test doubles, and the step to a given status, shared by the session-store tests."""

from __future__ import annotations

from collections.abc import Callable

from infrastructure.sessions.models import Session, SessionStatus
from infrastructure.sessions.store import SessionStore

#: An arbitrary fixed start (2023-11-14): the tests read times off this clock.
CLOCK_START_MS = 1_700_000_000_000

StoreFactory = Callable[..., SessionStore]


class FakeClock:
    """Epoch milliseconds that advance by one on every reading: each write happens at a
    distinct, known instant, so queue order never depends on the wall clock's resolution."""

    def __init__(self, start: int = CLOCK_START_MS) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now


S = SessionStatus
HOLDER = "agent-1"
OTHER = "agent-2"


async def bring_to(store: SessionStore, name: str, status: SessionStatus) -> Session:
    """A new session named ``name`` in ``status`` (held by HOLDER when agent_active)."""
    session = await store.create(name)
    if status is S.AI:
        return session
    if status is S.CLOSED:
        return await store.close(name)
    session = await store.escalate(name, "asked for a human")
    if status is S.AGENT_ACTIVE:
        session = await store.takeover(name, HOLDER)
    if status is S.ABANDONED:
        session = await store.set_status(name, S.ABANDONED)
    return session
