"""One Redis connection shared by every concurrent publisher of a process.

redis-py gives each command a pooled connection of its own: checking it out
(a Condition, a timeout scope), a ``wait_for`` task per socket write, retry and
observability wrappers, then the release. On the publish path that costs more
CPU than the rest of the request together, and a burst of N concurrent
publishes holds N connections. :class:`CommandPipe` writes each command as it
comes on one connection (pipelining: commands of concurrent callers travel
back to back) and hands the replies out in order, as Redis sends them.

The connection itself (URL, AUTH, SELECT, TLS, the handshake) is redis-py's: a
``Connection`` made by its pool from ``REDIS_URL``; only the sending, the
reading (:mod:`~infrastructure.bootstrap.redis_wire`: replies handed over as the
socket delivers them, no reader task) and the matching of replies are done here.

Failure semantics are those of a pooled command: a lost connection fails every
command in flight with :class:`redis.exceptions.ConnectionError` (Redis may or
may not have run them; the caller decides, see ``RedisSseManager.publish``), a
reply that takes longer than ``timeout`` fails them all with
:class:`redis.exceptions.TimeoutError` and drops the connection (replies could
no longer be matched), and the next command connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.bootstrap.redis_wire import ReplyStream, pack_commands, write_packed


class CommandPipe:
    """Pipelined commands on one connection, replies matched in order."""

    def __init__(self, url: str, timeout: float, name: str | None = None) -> None:
        # The pool is only a factory here: it parses the URL and makes the one
        # connection; it never hands connections out.
        self._factory = aioredis.ConnectionPool.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=None, client_name=name
        )
        self.timeout = timeout
        self._conn: AbstractConnection | None = None
        self._connecting: asyncio.Future[AbstractConnection] | None = None
        #: (future, deadline) of each command sent and not yet answered, oldest first.
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._stream: ReplyStream | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        self._disconnects: set[asyncio.Task[None]] = set()

    async def execute(self, *args: Any) -> Any:
        """Send one command; its reply (an error reply is raised as :class:`ResponseError`)."""
        return await self.execute_packed(hiredis.pack_command(args))

    async def execute_packed(self, command: bytes) -> Any:
        """:meth:`execute` for a command already packed (``hiredis.pack_command``'s form)."""
        conn = self._conn if self._conn is not None else await self._connect()
        future = asyncio.get_running_loop().create_future()
        self._write(conn, command, (future,))
        return await future

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send several commands in one write; their replies, in order. The first
        error is raised once every reply is in (none is left unread)."""
        conn = self._conn if self._conn is not None else await self._connect()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self._write(conn, pack_commands(commands), futures)
        # One after the other, as the replies come (in order, most in one socket
        # read): ``asyncio.gather`` cost 35,000 instructions more for two.
        replies: list[Any] = []
        error: Exception | None = None
        for future in futures:
            try:
                replies.append(await future)
            except Exception as exc:
                replies.append(exc)
                error = error or exc
        if error is not None:
            raise error
        return replies

    def _write(
        self, conn: AbstractConnection, data: bytes, futures: Sequence[asyncio.Future[Any]]
    ) -> None:
        """Queue the commands' futures and write them, in one step with no await in
        between: the order of the queue is the order on the wire. No task per write."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        waiting = self._waiting
        for future in futures:
            waiting.append((future, deadline))
        try:
            write_packed(conn, data)
        except Exception as exc:
            self._abort(RedisConnectionError(f"writing to Redis failed: {exc!r}"))
        if self._watchdog is None and waiting:
            self._watchdog = loop.call_at(waiting[0][1], self._check_deadline)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def close(self) -> None:
        self._closed = True
        self._abort(RedisConnectionError("the command pipe is closed"))
        if self._disconnects:
            await asyncio.gather(*self._disconnects, return_exceptions=True)
        await self._factory.aclose()

    # --- the connection ---

    async def _connect(self) -> AbstractConnection:
        if self._closed:
            raise RedisConnectionError("the command pipe is closed")
        # Concurrent first commands share one attempt.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None

    async def _open(self) -> AbstractConnection:
        conn: AbstractConnection = self._factory.make_connection()  # type: ignore[no-untyped-call]

        def lost(exc: Exception) -> None:
            if self._conn is conn:
                self._abort(RedisConnectionError(f"Redis connection lost: {exc!r}"))

        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            self._stream = ReplyStream(conn, self._on_replies, lost)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise
        self._conn = conn
        return conn

    def _on_replies(self, replies: list[Any]) -> None:
        waiting = self._waiting
        for reply in replies:
            if isinstance(reply, hiredis.PushNotification):
                continue  # not a reply to a command (RESP3 out-of-band)
            if not waiting:  # nothing asked: the stream is out of step
                raise RedisConnectionError("unexpected reply from Redis")
            future, _ = waiting.popleft()
            if future.done():  # its caller was cancelled; the reply is dropped
                continue
            if isinstance(reply, ResponseError):  # its command failed, not the link
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _check_deadline(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        deadline = self._waiting[0][1]
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            self._abort(RedisTimeoutError(f"no reply from Redis within {self.timeout} s"))
        else:
            self._watchdog = loop.call_at(deadline, self._check_deadline)

    def _abort(self, error: Exception) -> None:
        """Drop the connection and fail every command in flight with ``error``."""
        conn, self._conn = self._conn, None
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()  # what the old connection still brings matches nothing now
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if conn is not None:
            # nowait: close the socket without waiting for the server.
            task = asyncio.ensure_future(conn.disconnect(nowait=True))
            self._disconnects.add(task)
            task.add_done_callback(self._disconnects.discard)
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
