"""read_replies against a real Redis: every reply, in order, none lost to redis-py's
own reads of the same connection; error replies returned, a closed link raised."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from infrastructure.bootstrap.redis_wire import read_replies


@pytest.fixture
async def conn(redis_url: str) -> AsyncIterator[AbstractConnection]:
    pool = aioredis.ConnectionPool.from_url(redis_url)
    connection: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
    await connection.connect()  # type: ignore[no-untyped-call]
    yield connection
    await connection.disconnect()
    await pool.aclose()


async def _replies(conn: AbstractConnection, count: int) -> list[object]:
    out: list[object] = []
    while len(out) < count:
        out.extend(await read_replies(conn))
    return out


async def test_replies_come_in_order_error_replies_as_values(conn: AbstractConnection) -> None:
    await conn.send_packed_command(
        conn.pack_commands(
            [("SET", "text", "abc"), ("INCR", "text"), ("ECHO", "after"), ("GET", "text")]
        )
    )
    ok, error, echoed, text = await _replies(conn, 4)
    assert ok is True or ok == b"OK"
    # A failed command is a value in its place: the connection is not condemned.
    assert isinstance(error, ResponseError)
    assert (echoed, text) == (b"after", b"abc")


async def test_what_redis_py_has_buffered_is_not_lost(conn: AbstractConnection) -> None:
    # Both replies travel in one segment: redis-py's read of the first takes the
    # second off the socket too, into the parser that read_replies goes on with.
    await conn.send_packed_command(conn.pack_commands([("ECHO", "one"), ("ECHO", "two")]))
    assert await conn.read_response() == b"one"
    assert await read_replies(conn) == [b"two"]


async def test_a_socket_read_gives_every_reply_it_completed(conn: AbstractConnection) -> None:
    commands = [("ECHO", f"m{i}") for i in range(200)]
    await conn.send_packed_command(conn.pack_commands(commands))
    batches: list[list[object]] = []
    while sum(map(len, batches)) < len(commands):
        batches.append(await read_replies(conn))
    assert [reply for batch in batches for reply in batch] == [f"m{i}".encode() for i in range(200)]
    # 200 small replies come in a few reads: one await per read, not per reply.
    assert len(batches) < len(commands)


async def test_pub_sub_messages_read_as_lists(conn: AbstractConnection, redis_url: str) -> None:
    await conn.send_command("SUBSCRIBE", "room")
    (ack,) = await read_replies(conn)
    assert list(ack) == [b"subscribe", b"room", 1]
    publisher = aioredis.Redis.from_url(redis_url)
    try:
        assert await publisher.publish("room", b"hello") == 1
    finally:
        await publisher.aclose()
    (message,) = await read_replies(conn)
    assert list(message) == [b"message", b"room", b"hello"]


async def test_a_closed_connection_raises(conn: AbstractConnection, redis_url: str) -> None:
    await conn.send_command("CLIENT", "ID")
    (client_id,) = await read_replies(conn)
    killer = aioredis.Redis.from_url(redis_url)
    try:
        assert await killer.client_kill_filter(_id=client_id) == 1
    finally:
        await killer.aclose()
    with pytest.raises(RedisConnectionError, match="closed the connection"):
        await read_replies(conn)
