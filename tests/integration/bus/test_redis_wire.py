"""The bus's own Redis connection against a real Redis: the handshake (RESP3, login,
name, database), every reply in order, error replies passed on, the end of the
connection reported once."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from infrastructure.bus.redis.connection import (
    RedisAddress,
    RespConnection,
    open_connection,
    pack_commands,
)
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer

DEADLINE_SECONDS = 5.0


class Collector:
    """A ReplySink that keeps what its connection hands over."""

    def __init__(self) -> None:
        self.batches: list[list[object]] = []
        self.lost: list[Exception] = []
        self._changed = asyncio.Event()

    def replies_received(self, replies: list[Any]) -> None:
        self.batches.append(replies)
        self._changed.set()

    def connection_ended(self, connection: RespConnection, error: Exception) -> None:
        self.lost.append(error)
        self._changed.set()

    @property
    def replies(self) -> list[object]:
        return [reply for batch in self.batches for reply in batch]

    async def wait_for(self, done: object) -> None:
        async with asyncio.timeout(DEADLINE_SECONDS):
            while not done():  # type: ignore[operator]
                self._changed.clear()
                await self._changed.wait()

    async def replies_count(self, count: int) -> list[object]:
        await self.wait_for(lambda: len(self.replies) >= count)
        return self.replies


@pytest.fixture
async def collector(redis_url: str) -> AsyncIterator[tuple[Collector, RespConnection]]:
    sink = Collector()
    connection = await open_connection(
        RedisAddress.from_url(redis_url), sink, DEADLINE_SECONDS, "wire-test"
    )
    yield sink, connection
    connection.close()


async def test_the_handshake_speaks_resp3_and_names_the_connection(
    collector: tuple[Collector, RespConnection],
) -> None:
    sink, connection = collector
    connection.write(pack_commands([("CLIENT", "INFO")]))
    (info,) = await sink.replies_count(1)
    assert isinstance(info, bytes)
    assert b" resp=3" in info
    assert b" name=wire-test " in info
    assert b" db=0 " in info


async def test_the_database_of_the_url_is_selected(redis_url: str) -> None:
    sink = Collector()
    url = redis_url.rsplit("/", 1)[0] + "/3"
    connection = await open_connection(RedisAddress.from_url(url), sink, DEADLINE_SECONDS)
    try:
        connection.write(pack_commands([("CLIENT", "INFO")]))
        (info,) = await sink.replies_count(1)
        assert isinstance(info, bytes)
        assert b" db=3 " in info
    finally:
        connection.close()


async def test_login_with_user_and_password_and_a_refused_one(
    redis_server: RedisServer,
) -> None:
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.acl_setuser(
            "wire", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"]
        )
    finally:
        await admin.aclose()
    base = redis_server.url.replace("redis://", "")
    sink = Collector()
    good = await open_connection(
        RedisAddress.from_url(f"redis://wire:s3cret@{base}"), sink, DEADLINE_SECONDS
    )
    try:
        good.write(pack_commands([("ACL", "WHOAMI")]))
        assert await sink.replies_count(1) == [b"wire"]
    finally:
        good.close()
    with pytest.raises(AuthenticationError):
        await open_connection(
            RedisAddress.from_url(f"redis://wire:wrong@{base}"), Collector(), DEADLINE_SECONDS
        )


def test_under_uvloop_as_the_services_run(redis_url: str) -> None:
    """uvicorn runs the services on uvloop, whose transports are not asyncio's classes."""

    async def round_trip() -> list[object]:
        sink = Collector()
        connection = await open_connection(
            RedisAddress.from_url(redis_url), sink, DEADLINE_SECONDS, "uvloop-test"
        )
        try:
            connection.write(pack_commands([("ECHO", "on uvloop")]))
            return await sink.replies_count(1)
        finally:
            connection.close()

    assert uvloop.run(round_trip()) == [b"on uvloop"]


async def test_nothing_listening_is_a_connection_error() -> None:
    with pytest.raises(RedisConnectionError):
        await open_connection(RedisAddress.from_url("redis://127.0.0.1:1/0"), Collector(), 1.0)


async def test_replies_come_in_order_error_replies_as_values(
    collector: tuple[Collector, RespConnection],
) -> None:
    sink, connection = collector
    connection.write(pack_commands([("SET", "text", "abc"), ("INCR", "text"), ("ECHO", "after")]))
    connection.write(pack_commands([("EVALSHA", "0" * 40, 0), ("GET", "text")]))
    ok, error, echoed, no_script, text = await sink.replies_count(5)
    assert ok == b"OK"
    # A failed command is a value in its place, named as redis-py names it.
    assert isinstance(error, ResponseError)
    assert isinstance(no_script, NoScriptError)
    assert (echoed, text) == (b"after", b"abc")
    assert sink.lost == []


async def test_a_socket_read_gives_every_reply_it_completed(
    collector: tuple[Collector, RespConnection],
) -> None:
    sink, connection = collector
    connection.write(pack_commands([("ECHO", f"m{i}") for i in range(200)]))
    replies = await sink.replies_count(200)
    assert replies == [f"m{i}".encode() for i in range(200)]
    # 200 small replies come in a few reads: one call per read, not per reply.
    assert len(sink.batches) < 200


async def test_pub_sub_messages_come_as_pushes(
    collector: tuple[Collector, RespConnection], redis_url: str
) -> None:
    sink, connection = collector
    connection.write(pack_commands([("SUBSCRIBE", "room")]))
    (ack,) = await sink.replies_count(1)
    assert list(ack) == [b"subscribe", b"room", 1]  # type: ignore[call-overload]
    publisher = aioredis.Redis.from_url(redis_url)
    try:
        assert await publisher.publish("room", b"hello") == 1
    finally:
        await publisher.aclose()
    _, message = await sink.replies_count(2)
    assert list(message) == [b"message", b"room", b"hello"]  # type: ignore[call-overload]


async def test_a_closed_connection_is_reported_once(
    collector: tuple[Collector, RespConnection], redis_url: str
) -> None:
    sink, connection = collector
    connection.write(pack_commands([("CLIENT", "ID")]))
    (client_id,) = await sink.replies_count(1)
    killer = aioredis.Redis.from_url(redis_url)
    try:
        assert await killer.client_kill_filter(_id=str(client_id)) == 1
    finally:
        await killer.aclose()
    await sink.wait_for(lambda: sink.lost)
    connection.close()
    assert len(sink.lost) == 1
    assert isinstance(sink.lost[0], RedisConnectionError)
    assert "closed the connection" in str(sink.lost[0])
    with pytest.raises(RedisConnectionError):
        connection.write(pack_commands([("PING",)]))


async def test_a_failing_sink_ends_the_connection(redis_url: str) -> None:
    class Refusing(Collector):
        def replies_received(self, replies: list[Any]) -> None:
            raise ValueError("out of step")

    sink = Refusing()
    connection = await open_connection(RedisAddress.from_url(redis_url), sink, DEADLINE_SECONDS)
    connection.write(pack_commands([("PING",)]))
    await sink.wait_for(lambda: sink.lost)
    assert [type(e) for e in sink.lost] == [ValueError]
    # The transport is closed: what follows can no longer be matched to a command.
    assert connection.closing


async def test_a_closed_connection_hands_out_nothing_more(
    collector: tuple[Collector, RespConnection],
) -> None:
    sink, connection = collector
    connection.write(pack_commands([("ECHO", "first")]))
    assert await sink.replies_count(1) == [b"first"]
    connection.write(pack_commands([("ECHO", "second")]))
    connection.close()
    # Its owner gave it up: neither the reply in flight nor the end reaches it.
    assert connection.closing
    assert sink.replies == [b"first"]
    assert sink.lost == []


# --- REDIS_URL ---


def test_addresses_parse_as_redis_py_reads_them() -> None:
    plain = RedisAddress.from_url("redis://127.0.0.1:6390/2")
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == (
        "127.0.0.1",
        6390,
        2,
        None,
        None,
    )
    login = RedisAddress.from_url("redis://al%40ice:p%3Ass@cache.internal?db=5")
    assert (login.host, login.port, login.username, login.password, login.db) == (
        "cache.internal",
        6379,
        "al@ice",
        "p:ss",
        5,
    )
    assert login.handshake("svc:bus") == [
        ("HELLO", 3, "AUTH", "al@ice", "p:ss", "SETNAME", "svc:bus"),
        ("SELECT", 5),
    ]
    # A password alone logs in as the default user; database 0 needs no SELECT.
    assert RedisAddress.from_url("redis://:pw@h/0").handshake(None) == [
        ("HELLO", 3, "AUTH", "default", "pw")
    ]
    unix = RedisAddress.from_url("unix:///run/redis.sock?db=1")
    assert (unix.path, unix.db) == ("/run/redis.sock", 1)


def test_rediss_gets_a_tls_context() -> None:
    verified = RedisAddress.from_url("rediss://h:6380/0")
    assert verified.tls is not None
    assert verified.tls.verify_mode == ssl.CERT_REQUIRED
    assert verified.tls.check_hostname
    relaxed = RedisAddress.from_url("rediss://h:6380/0?ssl_cert_reqs=none")
    assert relaxed.tls is not None
    assert relaxed.tls.verify_mode == ssl.CERT_NONE
    with pytest.raises(ValueError, match="REDIS_URL must start with"):
        RedisAddress.from_url("http://h:6379")


# --- TLS and Unix sockets, against a redis-server serving them ---


@pytest.fixture(scope="module")
def tls_and_unix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if shutil.which("openssl") is None:
        pytest.fail(
            "openssl is needed to make the test certificate: apt-get install openssl",
            pytrace=False,
        )
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    tls_port, socket = free_port(), where / "redis.sock"
    server = RedisServer(
        extra_args=[
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
            "--tls-auth-clients", "no", "--unixsocket", str(socket),
        ]
    )  # fmt: skip
    server.start()
    try:
        yield TlsServer(tls_port, cert, socket)
    finally:
        server.stop()


@dataclass
class TlsServer:
    tls_port: int
    cert: Path
    socket: Path


async def echo_over(url: str) -> list[object]:
    sink = Collector()
    connection = await open_connection(RedisAddress.from_url(url), sink, DEADLINE_SECONDS, "t")
    try:
        connection.write(pack_commands([("ECHO", "over there")]))
        return await sink.replies_count(1)
    finally:
        connection.close()


async def test_rediss_speaks_tls_and_checks_the_certificate(tls_and_unix_server: TlsServer) -> None:
    server = tls_and_unix_server
    url = f"rediss://127.0.0.1:{server.tls_port}/0"
    assert await echo_over(f"{url}?ssl_ca_certs={server.cert}") == [b"over there"]
    assert await echo_over(f"{url}?ssl_cert_reqs=none") == [b"over there"]
    with pytest.raises(RedisConnectionError):  # a certificate nobody vouches for
        await echo_over(url)


async def test_unix_sockets(tls_and_unix_server: TlsServer) -> None:
    assert await echo_over(f"unix://{tls_and_unix_server.socket}?db=2") == [b"over there"]
