"""Real databases for the record's tests: a fresh PostgreSQL database (created and dropped
per use) on the server at ``POSTGRES_ADMIN_URL``, and SQLite files in a temp folder.

A PostgreSQL that does not answer fails the test with how to get one: never a skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

#: Where the tests find PostgreSQL (trust auth, a user allowed to create databases).
#: ``CS_TEST_POSTGRES`` overrides it (a DSN of any database on the server).
POSTGRES_ADMIN_URL = os.environ.get(
    "CS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOW_TO_GET_POSTGRES = (
    f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL}. The record's tests need a real "
    "one: `apt-get install postgresql && service postgresql start` (then allow trust auth for "
    "user postgres from 127.0.0.1 in pg_hba.conf), or `docker run -d -p 5432:5432 -e "
    "POSTGRES_HOST_AUTH_METHOD=trust postgres:16`, or point CS_TEST_POSTGRES at one "
    "(postgresql://user@host:port/db, a user that may CREATE DATABASE)."
)


async def _admin(sql: str) -> None:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"{HOW_TO_GET_POSTGRES} ({type(exc).__name__}: {exc})", pytrace=False)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _url_of(database: str) -> str:
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{database}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database; its SQLAlchemy URL. Dropped afterwards (connections and all)."""
    name = f"record_test_{os.getpid()}_{secrets.token_hex(4)}"
    # TEMPLATE template0: template1 may have a session on it (another test run on this
    # shared server), which makes CREATE DATABASE from it fail.
    asyncio.run(_admin(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"))
    try:
        yield _url_of(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
