"""Settings with known secrets, for tests that sign and check tokens."""

from __future__ import annotations

from typing import Any

from infrastructure.config import Settings

SECRET = "test-secret-0123456789-0123456789-abcdef"
OTHER_SECRET = "another-secret-0123456789-0123456789-xyz"
#: The record's SQLite database in memory (one connection): for tests that write no file.
MEMORY_DATABASE_URL = "sqlite+aiosqlite:///:memory:"


def make_settings(**overrides: Any) -> Settings:
    # _env_file=None: a developer's .env (make run writes one) must not leak into unit tests.
    # GC_GEN0_THRESHOLD=0: an app started in the test process must not freeze the
    # objects of the tests around it out of garbage collection.
    # DATABASE_URL: the record in memory, no file (issue 21).
    values: dict[str, Any] = {
        "AUTH_SECRET": SECRET,
        "GC_GEN0_THRESHOLD": 0,
        "DATABASE_URL": MEMORY_DATABASE_URL,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def failover_settings(url: str) -> Settings:
    """Short timeouts: a dead primary is noticed, and its successor found, in about a second."""
    return make_settings(
        REDIS_URL=url,
        REDIS_SOCKET_TIMEOUT_SECONDS=1.0,
        REDIS_RECONNECT_MAX_SECONDS=0.3,
        REDIS_TOPOLOGY_CHECK_SECONDS=0.2,
        REDIS_DELIVERY_STALL_SECONDS=3.0,
    )
