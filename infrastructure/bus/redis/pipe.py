"""One Redis connection shared by every concurrent publisher of a process, and
by its subscriptions.

redis-py gives each command a pooled connection of its own: checking it out
(a Condition, a timeout scope), a ``wait_for`` task per socket write, retry and
observability wrappers, then the release. On the publish path that costs more
CPU than the rest of the request together, and a burst of N concurrent
publishes holds N connections. :class:`CommandPipe` writes each command as it
comes on one connection (pipelining: commands of concurrent callers travel
back to back) and hands the replies out in order, as Redis sends them.

The same connection carries the bus's subscriptions (RESP3 lets a subscribed
connection run any command; what its SUBSCRIBEs bring arrives as push messages,
told apart from replies by their type). Redis then answers a publish and
delivers its event to this process in one socket read (``bench/README.md`` has
the figures). A subscriber takes the connection's :class:`Link`
(:meth:`CommandPipe.link`, with the :class:`PushSink` that receives the pushes).

The connection is the bus's own (:mod:`~infrastructure.bus.redis.connection`:
asyncio's transport, hiredis's parser, its own handshake): replies are handed
over as the socket delivers them, no reader task.

Failure semantics are those of a pooled command: a lost connection fails every
command in flight with :class:`redis.exceptions.ConnectionError` (Redis may or
may not have run them; the caller decides, see the bus's publisher), a reply
that takes longer than ``timeout`` fails them all with
:class:`redis.exceptions.TimeoutError` and drops the connection (replies could
no longer be matched), and the next command connects again. Either ends the
connection's :class:`Link`: its subscriptions are gone with it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis

from infrastructure.bus.redis.connection import (
    RedisAddress,
    RespConnection,
    open_connection,
    pack_commands,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Where the primary is now (Sentinel: asked each time the pipe connects); with one,
#: the connection also checks ``ROLE`` and refuses a server that is not a primary.
PrimaryResolver = Callable[[], Awaitable[RedisAddress]]

#: What receives a link's pushes (RESP3 out-of-band data: what SUBSCRIBE brings), in
#: the order they came among the replies.
PushSink = Callable[[Any], None]


def _drop_push(push: Any) -> None:
    pass


class Link:
    """One connection of a :class:`CommandPipe`, as a subscriber sees it: commands
    answered only by pushes (SUBSCRIBE, UNSUBSCRIBE) are written with :meth:`write`,
    which refuses once the connection has ended (its successor has none of this
    one's subscriptions); :attr:`ended` fails with the error that ended it."""

    __slots__ = ("connection", "ended")

    def __init__(self, connection: RespConnection) -> None:
        self.connection = connection
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved here: a link nobody waits on must not log "never retrieved".
        self.ended.add_done_callback(_retrieve)

    @property
    def alive(self) -> bool:
        return not self.ended.done()

    def write(self, data: bytes) -> None:
        """Write packed commands whose answers are pushes (no reply is waited for)."""
        if self.ended.done():
            raise RedisConnectionError("the connection has ended")
        self.connection.write(data)

    def end(self, error: Exception) -> None:
        # What the old connection still brings matches nothing now.
        self.connection.close()
        if not self.ended.done():
            self.ended.set_exception(error)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class CommandPipe:
    """Pipelined commands on one connection, replies matched in order."""

    def __init__(
        self,
        url: str,
        timeout: float,
        name: str | None = None,
        resolver: PrimaryResolver | None = None,
    ) -> None:
        self._resolver = resolver
        #: Where the pipe connects (Sentinel: where it last connected).
        self.address = RedisAddress.from_url(url) if resolver is None else RedisAddress()
        #: The ``ROLE`` reply of the server connected to, when a resolver is used.
        self.role: list[Any] | None = None
        self._name = name
        self.timeout = timeout
        #: Where pushes go: the subscriber's, once it took the link.
        self._on_push: PushSink = _drop_push
        #: The connection (None until the next command connects again).
        self._link: Link | None = None
        self._connecting: asyncio.Future[Link] | None = None
        #: (future, deadline) of each command sent and not yet answered, oldest first.
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    async def execute(self, *args: Any) -> Any:
        """Send one command; its reply (an error reply is raised as :class:`ResponseError`)."""
        return await self.execute_packed(hiredis.pack_command(args))

    async def execute_packed(self, command: bytes) -> Any:
        """:meth:`execute` for a command already packed (``hiredis.pack_command``'s form)."""
        link = self._link
        if link is None:
            link = await self._connect()
        future = asyncio.get_running_loop().create_future()
        self._write(link.connection, command, (future,))
        return await future

    async def execute_packed_many(self, commands: bytes, count: int) -> list[Any]:
        """``count`` commands already packed, in one write; their replies (error replies
        among them as exceptions, not raised)."""
        link = self._link
        if link is None:
            link = await self._connect()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        self._write(link.connection, commands, futures)
        replies: list[Any] = []
        lost: Exception | None = None
        for future in futures:
            try:
                replies.append(await future)
            except ResponseError as exc:
                replies.append(exc)
            except Exception as exc:  # the connection: every future is read, then raised
                lost = lost or exc
        if lost is not None:
            raise lost
        return replies

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send several commands in one write; their replies, in order. The first
        error is raised once every reply is in (none is left unread)."""
        link = self._link
        if link is None:
            link = await self._connect()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self._write(link.connection, pack_commands(commands), futures)
        # One after the other, as the replies come (in order, most in one socket
        # read), rather than ``asyncio.gather`` (see bench/README.md).
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
        self, connection: RespConnection, data: bytes, futures: Sequence[asyncio.Future[Any]]
    ) -> None:
        """Queue the commands' futures and write them, in one step with no await in
        between: the order of the queue is the order on the wire. No task per write."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        waiting = self._waiting
        for future in futures:
            waiting.append((future, deadline))
        try:
            connection.write(data)
        except Exception as exc:
            self._abort(RedisConnectionError(f"writing to Redis failed: {exc!r}"))
        if self._watchdog is None and waiting:
            self._watchdog = loop.call_at(waiting[0][1], self._check_deadline)

    async def link(self, on_push: PushSink | None = None) -> Link:
        """The connection, for a subscriber (connected first if it is not); its pushes
        go to ``on_push`` from now on (dropped without one)."""
        if on_push is not None:
            self._on_push = on_push
        link = self._link
        if link is None:
            link = await self._connect()
        if not link.alive:  # lost as soon as it was made
            raise RedisConnectionError("the connection ended as it opened")
        return link

    def drop(self, link: Link, error: Exception) -> None:
        """End ``link``'s connection, if it is still the current one (a subscriber that
        no longer knows what it is subscribed to there)."""
        if link is self._link:
            self._abort(error)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def close(self) -> None:
        self._closed = True
        self._abort(RedisConnectionError("the command pipe is closed"))

    # --- the connection ---

    async def _connect(self) -> Link:
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

    async def _open(self) -> Link:
        if self._resolver is not None:
            self.address = await self._resolver()
        connection = await open_connection(
            self.address, self, self.timeout, self._name, check_role=self._resolver is not None
        )
        self.role = connection.role
        if self._closed:
            connection.close()
            raise RedisConnectionError("the command pipe is closed")
        link = self._link = Link(connection)
        return link

    # --- ReplySink: what the connection hands over ---

    def replies_received(self, replies: list[Any]) -> None:
        waiting = self._waiting
        on_push = self._on_push
        for reply in replies:
            if type(reply) is hiredis.PushNotification:  # not a reply to a command
                on_push(reply)
                continue
            if isinstance(reply, NoPermissionError):
                # A SUBSCRIBE refused (ACL) answers with an error reply, not a push:
                # it has no place in the queue, so no reply could be trusted to match
                # its command any longer. (A refused command would mean the same
                # misconfiguration.) Ends the connection.
                raise reply
            if not waiting:  # nothing asked: the stream is out of step
                raise RedisConnectionError("unexpected reply from Redis")
            future, _ = waiting.popleft()
            if future.done():  # its caller was cancelled; the reply is dropped
                continue
            if isinstance(reply, ResponseError):  # its command failed, not the link
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_ended(self, connection: RespConnection, error: Exception) -> None:
        if self._link is not None and self._link.connection is connection:
            self._abort(RedisConnectionError(f"Redis connection lost: {error!r}"))

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
        link, self._link = self._link, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if link is not None:
            link.end(error)
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
