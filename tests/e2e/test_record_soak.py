"""Nothing lost: messages accepted by Redis while the database is unreachable and comes
back, and while the archiver (``python -m infrastructure.record.archiver``, a real
process) is killed with SIGKILL twice, are each in SQL exactly once in the end.

The database goes away for real: the archiver reaches PostgreSQL through a TCP proxy this
test runs, and "down" closes the proxy's port and cuts every connection through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from infrastructure.config import Settings
from infrastructure.record import schema
from infrastructure.record.database import create_engine, migrate
from infrastructure.sessions import ChatMessage, SenderRole
from infrastructure.sessions.redis_store import RedisSessionStore
from tests.support.databases import fresh_postgres_database
from tests.support.processes import REPO_ROOT, async_wait_until, free_port, tail
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

SESSIONS = 20
MESSAGES = 2400
#: Pacing of the publisher (a rate, not a wait for anything): ~400 messages a second.
PACE_SECONDS = 0.0025


class TcpProxy:
    """127.0.0.1:<port> -> upstream; :meth:`down` closes the port and cuts every connection."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers -= {writer, up_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


class ArchiverProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.log = Path(tempfile.mkdtemp(prefix="archiver-")) / "archiver.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.record.archiver"],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def sigkill(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"the archiver died on its own:\n{tail(self.log)}"
        os.kill(self.proc.pid, signal.SIGKILL)  # by the PID this test started
        self.proc.wait(10)
        self.killed += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.timeout(240)
async def test_every_accepted_message_is_in_sql_exactly_once(
    redis_server: RedisServer, postgres_url: str
) -> None:
    real = make_url(postgres_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.up()
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False
    )
    engine = create_engine(postgres_url)
    await migrate(engine)  # as a service's start would (the archiver would too)
    settings = Settings(_env_file=None, REDIS_URL=redis_server.url)
    client = aioredis.Redis.from_url(redis_server.url)
    store = RedisSessionStore(client, settings)
    archiver = ArchiverProcess(
        {
            "REDIS_URL": redis_server.url,
            "DATABASE_URL": through_proxy,
            "RECORD_CLAIM_IDLE_MS": "500",
            "RECORD_BATCH_SIZE": "50",
            "LOG_LEVEL": "INFO",
        }
    )

    async def in_sql() -> int:
        async with engine.connect() as connection:
            total = await connection.scalar(select(func.count()).select_from(schema.messages))
        return int(total or 0)

    accepted: dict[str, list[str]] = {}
    try:
        archiver.start()
        names = [f"soak-{i}" for i in range(SESSIONS)]
        for name in names:
            await store.create(name)
            accepted[name] = []
        for n in range(MESSAGES):
            name = names[n % SESSIONS]
            message = await store.append_message(
                ChatMessage(session_name=name, sender=SenderRole.CUSTOMER, content=f"m{n} 消息")
            )
            accepted[name].append(message.id)
            if n == 300:
                await proxy.down()  # the database is unreachable ...
            elif n == 700:
                archiver.sigkill()  # ... and the archiver is killed while it retries
                archiver.start()
            elif n == 1400:
                await proxy.up()  # the database is back
            elif n == 1800:
                # killed again, mid-work: once it is committing again
                before = await in_sql()

                async def committing(before: int = before) -> bool:
                    return await in_sql() > before

                await async_wait_until(committing, timeout=30, description="commits resume")
                archiver.sigkill()
                archiver.start()
            await asyncio.sleep(PACE_SECONDS)  # the publisher's pace

        async def complete() -> bool:
            return await in_sql() >= MESSAGES

        await async_wait_until(complete, timeout=90, description="every message in SQL")
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(schema.messages.c.session_name, schema.messages.c.message_id)
                )
            ).all()
        recorded: dict[str, list[str]] = {}
        for session_name, message_id in rows:
            recorded.setdefault(session_name, []).append(message_id)
        assert len(rows) == MESSAGES  # none twice ...
        assert {k: sorted(v) for k, v in recorded.items()} == {
            k: sorted(v) for k, v in accepted.items()
        }  # ... and none missing
        assert archiver.killed == 2
        log = tail(archiver.log, max_chars=1_000_000)
        assert "retrying" in log  # it did meet the database down
        assert "claimed" in log  # and a successor took over a dead consumer's entries
    except BaseException:
        print(tail(archiver.log))
        raise
    finally:
        archiver.stop()
        await proxy.down()
        await client.aclose()
        await engine.dispose()
        with contextlib.suppress(OSError):
            archiver.log.unlink()
