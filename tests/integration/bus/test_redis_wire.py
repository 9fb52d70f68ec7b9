"""ReplyStream against a real Redis: every reply, in order, none lost to redis-py's own
reads of the same connection; error replies passed on, the end of the connection
reported once, redis-py's own disconnect unharmed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from infrastructure.bootstrap.redis_wire import ReplyStream, pack_commands, write_packed

DEADLINE_SECONDS = 5.0


@pytest.fixture
async def conn(redis_url: str) -> AsyncIterator[AbstractConnection]:
    pool = aioredis.ConnectionPool.from_url(redis_url)
    connection: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
    await connection.connect()  # type: ignore[no-untyped-call]
    yield connection
    # redis-py's own close still completes once the stream has the transport.
    await asyncio.wait_for(connection.disconnect(), DEADLINE_SECONDS)
    await pool.aclose()


class Collector:
    """Takes ``conn`` over and keeps what the stream hands out."""

    def __init__(self, conn: AbstractConnection) -> None:
        self.batches: list[list[object]] = []
        self.lost: list[Exception] = []
        self._changed = asyncio.Event()
        self.stream = ReplyStream(conn, self._on_replies, self._on_lost)

    def _on_replies(self, replies: list[object]) -> None:
        self.batches.append(replies)
        self._changed.set()

    def _on_lost(self, error: Exception) -> None:
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


async def test_replies_come_in_order_error_replies_as_values(conn: AbstractConnection) -> None:
    collector = Collector(conn)
    write_packed(conn, pack_commands([("SET", "text", "abc"), ("INCR", "text"), ("ECHO", "after")]))
    write_packed(conn, pack_commands([("GET", "text")]))
    ok, error, echoed, text = await collector.replies_count(4)
    assert ok is True or ok == b"OK"
    # A failed command is a value in its place: the connection is not condemned.
    assert isinstance(error, ResponseError)
    assert (echoed, text) == (b"after", b"abc")
    assert collector.lost == []


async def test_what_redis_py_has_parsed_is_not_lost(conn: AbstractConnection) -> None:
    # Both replies travel in one segment: redis-py's read of the first takes the
    # second off the socket too, into the parser that the stream goes on with.
    await conn.send_packed_command(conn.pack_commands([("ECHO", "one"), ("ECHO", "two")]))
    assert await conn.read_response() == b"one"
    collector = Collector(conn)
    collector.stream.deliver_buffered()
    assert collector.replies == [b"two"]


async def test_what_redis_py_has_buffered_unparsed_is_not_lost(conn: AbstractConnection) -> None:
    # A reply that reached redis-py's stream while no one was reading: in its buffer,
    # not yet in the parser.
    await conn.send_packed_command(conn.pack_commands([("ECHO", "waiting")]))
    stream_reader: Any = conn._reader
    if not stream_reader._buffer:  # not yet arrived: wait for the socket's next bytes
        await asyncio.wait_for(stream_reader._wait_for_data("test"), DEADLINE_SECONDS)
    assert stream_reader._buffer
    collector = Collector(conn)
    collector.stream.deliver_buffered()
    assert collector.replies == [b"waiting"]


async def test_a_socket_read_gives_every_reply_it_completed(conn: AbstractConnection) -> None:
    collector = Collector(conn)
    write_packed(conn, pack_commands([("ECHO", f"m{i}") for i in range(200)]))
    replies = await collector.replies_count(200)
    assert replies == [f"m{i}".encode() for i in range(200)]
    # 200 small replies come in a few reads: one call per read, not per reply.
    assert len(collector.batches) < 200


async def test_pub_sub_messages_come_as_lists(conn: AbstractConnection, redis_url: str) -> None:
    collector = Collector(conn)
    write_packed(conn, pack_commands([("SUBSCRIBE", "room")]))
    (ack,) = await collector.replies_count(1)
    assert list(ack) == [b"subscribe", b"room", 1]  # type: ignore[call-overload]
    publisher = aioredis.Redis.from_url(redis_url)
    try:
        assert await publisher.publish("room", b"hello") == 1
    finally:
        await publisher.aclose()
    _, message = await collector.replies_count(2)
    assert list(message) == [b"message", b"room", b"hello"]  # type: ignore[call-overload]


async def test_a_closed_connection_is_reported_once(
    conn: AbstractConnection, redis_url: str
) -> None:
    collector = Collector(conn)
    write_packed(conn, pack_commands([("CLIENT", "ID")]))
    (client_id,) = await collector.replies_count(1)
    killer = aioredis.Redis.from_url(redis_url)
    try:
        assert await killer.client_kill_filter(_id=str(client_id)) == 1
    finally:
        await killer.aclose()
    await collector.wait_for(lambda: collector.lost)
    await conn.disconnect()
    assert len(collector.lost) == 1
    assert isinstance(collector.lost[0], RedisConnectionError)
    assert "closed the connection" in str(collector.lost[0])


async def test_a_failing_callback_ends_the_connection(conn: AbstractConnection) -> None:
    lost: list[Exception] = []
    ended = asyncio.Event()

    def refuse(replies: list[object]) -> None:
        raise ValueError("out of step")

    def on_lost(error: Exception) -> None:
        lost.append(error)
        ended.set()

    ReplyStream(conn, refuse, on_lost)
    write_packed(conn, pack_commands([("PING",)]))
    await asyncio.wait_for(ended.wait(), DEADLINE_SECONDS)
    assert [type(e) for e in lost] == [ValueError]
    # The transport is closed: what follows can no longer be matched to a command.
    assert conn._writer is not None
    assert conn._writer.transport.is_closing()


async def test_a_stopped_stream_hands_out_nothing_more(conn: AbstractConnection) -> None:
    collector = Collector(conn)
    write_packed(conn, pack_commands([("ECHO", "first")]))
    assert await collector.replies_count(1) == [b"first"]
    collector.stream.stop()
    write_packed(conn, pack_commands([("ECHO", "second")]))
    # A later reader of the same socket (a fresh stream) gets it instead.
    after = Collector(conn)
    assert await after.replies_count(1) == [b"second"]
    await conn.disconnect()
    assert collector.replies == [b"first"]
    assert collector.lost == []
