"""CommandPipe against a real Redis: concurrent callers on one connection, each
gets its own reply; failures fail the commands in flight and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.bus.redis.connection import pack_commands
from infrastructure.bus.redis.pipe import CommandPipe
from tests.support.processes import async_wait_until
from tests.support.redis_server import RedisServer


@pytest.fixture
async def pipe(redis_url: str) -> AsyncIterator[CommandPipe]:
    command_pipe = CommandPipe(redis_url, timeout=2.0)
    yield command_pipe
    await command_pipe.close()


async def _clients(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return len(await client.client_list()) - 1  # not this one
    finally:
        await client.aclose()


async def test_concurrent_commands_share_one_connection_and_get_their_own_replies(
    pipe: CommandPipe, redis_url: str
) -> None:
    replies = await asyncio.gather(*(pipe.execute("INCR", "counter") for _ in range(500)))
    # INCR answers the count so far: the n-th command sent gets n, so every caller got
    # the reply to its own command, in the order they were sent.
    assert replies == list(range(1, 501))
    echoed = await asyncio.gather(*(pipe.execute("ECHO", f"m{i}") for i in range(100)))
    assert echoed == [f"m{i}".encode() for i in range(100)]
    assert await _clients(redis_url) == 1


async def test_an_error_reply_fails_its_command_only(pipe: CommandPipe) -> None:
    await pipe.execute("SET", "text", "abc")
    results = await asyncio.gather(
        pipe.execute("INCR", "n"),
        pipe.execute("INCR", "text"),  # not an integer: an error reply
        pipe.execute("INCR", "n"),
        return_exceptions=True,
    )
    assert results[0] == 1
    assert isinstance(results[1], ResponseError)
    assert results[2] == 2
    assert await pipe.execute("GET", "text") == b"abc"


async def test_a_slow_reply_times_out_every_command_in_flight_and_the_next_reconnects(
    redis_url: str,
) -> None:
    pipe = CommandPipe(redis_url, timeout=0.3)
    try:
        # BLPOP blocks the connection for 5 s: the INCR sent behind it waits too.
        results = await asyncio.gather(
            pipe.execute("BLPOP", "empty-list", 5),
            pipe.execute("INCR", "after"),
            return_exceptions=True,
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert pipe.in_flight == 0
        # The stuck connection was dropped: the next command runs on a new one.
        assert await pipe.execute("PING") == b"PONG"
        assert await pipe.execute("INCR", "after") in (1, 2)
    finally:
        await pipe.close()


async def test_a_cancelled_caller_does_not_shift_the_replies(pipe: CommandPipe) -> None:
    assert await pipe.execute("PING") == b"PONG"  # connected: the next two are written at once
    waiting = asyncio.ensure_future(pipe.execute("BLPOP", "queue", 1))
    behind = asyncio.ensure_future(pipe.execute("ECHO", "mine"))
    await async_wait_until(lambda: pipe.in_flight == 2, description="both commands written")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await pipe.execute("RPUSH", "other", "x") == 1
    # The BLPOP's reply (nil after 1 s) is read and dropped; ECHO still gets its own.
    assert await behind == b"mine"
    assert await pipe.execute("ECHO", "next") == b"next"


async def test_redis_restart_fails_commands_in_flight_then_reconnects(
    redis_server: RedisServer,
) -> None:
    pipe = CommandPipe(redis_server.url, timeout=2.0)
    try:
        assert await pipe.execute("SET", "k", "v") == b"OK"
        in_flight = asyncio.ensure_future(pipe.execute("BLPOP", "never", 10))
        await async_wait_until(lambda: pipe.in_flight == 1, description="BLPOP written")
        redis_server.kill()
        with pytest.raises(RedisConnectionError):
            await in_flight
        with pytest.raises((RedisConnectionError, OSError)):
            await pipe.execute("PING")
        redis_server.restart()
        assert await pipe.execute("SET", "k", "again") == b"OK"
        assert await pipe.execute("GET", "k") == b"again"
    finally:
        await pipe.close()


async def test_closed_pipe_refuses(redis_url: str) -> None:
    pipe = CommandPipe(redis_url, timeout=1.0)
    assert await pipe.execute("ECHO", "x") == b"x"
    await pipe.close()
    with pytest.raises(RedisConnectionError):
        await pipe.execute("ECHO", "y")


async def test_execute_many_answers_in_order_and_raises_the_first_error_after_all(
    pipe: CommandPipe,
) -> None:
    assert await pipe.execute_many([("SET", "a", "1"), ("INCR", "a"), ("GET", "a")]) == [
        b"OK",
        2,
        b"2",
    ]
    await pipe.execute("SET", "text", "abc")
    with pytest.raises(ResponseError):
        await pipe.execute_many([("INCR", "n"), ("INCR", "text"), ("INCR", "n")])
    # Every reply of the failed batch was read: the third INCR ran, nothing is shifted.
    assert await pipe.execute("GET", "n") == b"2"


# --- the connection a subscriber shares (RESP3: pushes among the replies) ---


async def test_pushes_reach_on_push_in_order_and_replies_still_match(pipe: CommandPipe) -> None:
    pushes: list[Any] = []
    link = await pipe.link(pushes.append)
    link.write(pack_commands([("SUBSCRIBE", "news")]))
    await async_wait_until(lambda: len(pushes) == 1, description="the SUBSCRIBE confirmed")
    # A command on the subscribed connection: its PUBLISH reaches this connection too,
    # as a push, between the replies of the commands around it.
    replies = await asyncio.gather(
        pipe.execute("ECHO", "before"),
        pipe.execute("PUBLISH", "news", "hello"),
        pipe.execute("ECHO", "after"),
    )
    assert list(replies) == [b"before", 1, b"after"]
    await async_wait_until(lambda: len(pushes) == 2, description="the message pushed")
    assert [list(p) for p in pushes] == [
        [b"subscribe", b"news", 1],
        [b"message", b"news", b"hello"],
    ]
    assert await _clients_named_subscribed(pipe) == 1


async def _clients_named_subscribed(pipe: CommandPipe) -> int:
    """The connections of CLIENT LIST subscribed to a channel (asked on the pipe)."""
    listing: bytes = await pipe.execute("CLIENT", "LIST")
    return sum(1 for line in listing.decode().splitlines() if " sub=0 " not in line)


async def test_a_link_ends_with_its_connection_and_writes_nothing_after(
    pipe: CommandPipe, redis_url: str
) -> None:
    link = await pipe.link()
    client_id = await pipe.execute("CLIENT", "ID")
    killer = aioredis.Redis.from_url(redis_url)
    try:
        assert await killer.client_kill_filter(_id=str(client_id)) == 1
    finally:
        await killer.aclose()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(link.ended, 5)
    assert not link.alive
    with pytest.raises(RedisConnectionError):
        link.write(pack_commands([("SUBSCRIBE", "lost")]))
    # The next command connects again, on a link of its own.
    assert await pipe.execute("ECHO", "again") == b"again"
    assert (await pipe.link()) is not link


async def test_drop_ends_the_link_it_names_and_no_other(pipe: CommandPipe) -> None:
    old = await pipe.link()
    pipe.drop(old, RedisConnectionError("given up"))
    with pytest.raises(RedisConnectionError, match="given up"):
        await old.ended
    current = await pipe.link()
    assert current is not old
    pipe.drop(old, RedisConnectionError("stale"))  # no longer current: nothing happens
    assert current.alive
    assert await pipe.execute("ECHO", "still") == b"still"


async def test_a_refused_subscribe_ends_the_connection_instead_of_shifting_replies(
    redis_server: RedisServer,
) -> None:
    admin = CommandPipe(redis_server.url, timeout=2.0)
    await admin.execute(
        "ACL", "SETUSER", "narrow", "on", ">pw", "~*", "+@all", "resetchannels", "&open:*"
    )
    await admin.close()
    url = redis_server.url.replace("redis://", "redis://narrow:pw@")
    pipe = CommandPipe(url, timeout=2.0)
    try:
        link = await pipe.link()
        # The SUBSCRIBE is refused with an error reply (not a push), just ahead of the
        # INCR's reply: taken for the INCR's, every later reply would be one off.
        link.write(pack_commands([("SUBSCRIBE", "closed:1")]))
        with pytest.raises(RedisConnectionError, match="NoPermission"):
            await pipe.execute("INCR", "counted")
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(link.ended, 5)
        # Redis ran the INCR; the next commands, on a new connection, get their own.
        assert await pipe.execute("GET", "counted") == b"1"
        assert await pipe.execute("INCR", "counted") == 2
    finally:
        await pipe.close()
