"""Test doubles shared by the session-store tests."""

from __future__ import annotations

from collections.abc import Callable

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
