"""A Redis connection the bus owns: asyncio's transport, hiredis's parser, public APIs only.

The bus's connection (:class:`~infrastructure.bus.redis.pipe.CommandPipe`) reads one
reply per publish and one push per event of the whole process. So nothing waits on
the socket: :class:`RespConnection` is an ``asyncio.Protocol`` whose
``data_received`` feeds a ``hiredis.Reader`` and hands every reply that read
completed to its owner (:class:`ReplySink`), from the event loop's callback, with no
task and no ``StreamReader`` in between. Commands go the other way, packed by hiredis
and written to the transport in one call, with no task per write.

:func:`open_connection` makes one: ``loop.create_connection`` (TLS for ``rediss://``,
``create_unix_connection`` for ``unix://``), then the handshake this module does
itself, pipelined: ``HELLO 3`` (with ``AUTH`` and ``SETNAME``; RESP3, so that a
subscribed connection still runs commands and its messages arrive as pushes) and
``SELECT`` (:meth:`RedisAddress.handshake`). Nothing of redis-py is used but its
exception classes, so that callers handle one family of errors whichever client they
talk through (the command pool is redis-py's).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    InvalidResponse,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: What ``hiredis.Reader.gets`` returns while a reply is incomplete (its default,
#: ``False``, is also a RESP3 boolean reply).
_NOT_ENOUGH_DATA: Final = object()

DEFAULT_PORT: Final = 6379


def pack_commands(commands: Sequence[Sequence[Any]]) -> bytes:
    """``commands`` in the protocol's form, back to back (``hiredis.pack_command`` packs
    one)."""
    return b"".join(hiredis.pack_command(tuple(command)) for command in commands)


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis server is and how to log in, parsed from ``REDIS_URL``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: A Unix socket's path (``unix://``); host and port are then unused.
    path: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    #: Set for ``rediss://``.
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS; query
        ``ssl_cert_reqs=none|optional|required``, ``ssl_ca_certs``, ``ssl_certfile``,
        ``ssl_keyfile``, ``ssl_check_hostname``), ``unix://[[user]:password@]/path?db=n``.
        ``?db=`` wins over the path, as in redis-py."""
        parts = urlsplit(url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if parts.scheme == "unix":
            return cls(
                path=unquote(parts.path),
                username=username,
                password=password,
                db=int(query.get("db", 0)),
            )
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        db = query.get("db") or parts.path.strip("/") or "0"
        return cls(
            host=unquote(parts.hostname or "127.0.0.1"),
            port=parts.port or DEFAULT_PORT,
            username=username,
            password=password,
            db=int(db),
            tls=_tls_context(query) if parts.scheme == "rediss" else None,
        )

    def handshake(self, name: str | None) -> list[tuple[Any, ...]]:
        """The commands a new connection sends first: RESP3, login, name, database."""
        hello: list[Any] = ["HELLO", 3]
        if self.password is not None:
            hello += ["AUTH", self.username or "default", self.password]
        if name:
            hello += ["SETNAME", name]
        commands: list[tuple[Any, ...]] = [tuple(hello)]
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


def _tls_context(query: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if "ssl_certfile" in query:
        context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
    requirement = query.get("ssl_cert_reqs", "required").lower()
    if requirement in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE if requirement == "none" else ssl.CERT_OPTIONAL
    if query.get("ssl_check_hostname", "").lower() in ("false", "0", "no"):
        context.check_hostname = False
    return context


class ReplySink(Protocol):
    """The owner of a :class:`RespConnection`: receives its replies, and its end."""

    def replies_received(self, replies: list[Any]) -> None:
        """Every reply one socket read completed, in order (an error reply is a
        :class:`redis.exceptions.ResponseError` among them; a RESP3 push a
        ``hiredis.PushNotification``). Raising ends the connection."""

    def connection_ended(self, connection: RespConnection, error: Exception) -> None:
        """Called once, when the connection has ended, with why."""


#: Error replies redis-py raises as their own class (by the reply's first word).
_ERRORS: Final[dict[str, type[ResponseError]]] = {
    "NOSCRIPT": NoScriptError,
    "NOPERM": NoPermissionError,
    "READONLY": ReadOnlyError,
    "OOM": OutOfMemoryError,
}
#: Error replies that mean the connection is unusable.
_FATAL: Final[dict[str, type[RedisConnectionError]]] = {
    "LOADING": BusyLoadingError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
}


class _ReplyError(ResponseError):
    """What the reader makes of an error reply, before :func:`classify` names it."""


def classify(error: ResponseError) -> Exception:
    """The error a reply means, as redis-py names it (``NOSCRIPT ...`` is a
    :class:`~redis.exceptions.NoScriptError`, ``LOADING ...`` a
    :class:`~redis.exceptions.BusyLoadingError`, which ends the connection)."""
    message = str(error)
    code, _, rest = message.partition(" ")
    fatal = _FATAL.get(code)
    if fatal is not None:
        return fatal(rest)
    kind = _ERRORS.get(code)
    return kind(rest) if kind is not None else ResponseError(message)


class RespConnection(asyncio.Protocol):
    """One socket to Redis, RESP3. :meth:`write` sends packed commands; what comes
    back goes to the :class:`ReplySink` it was made for.

    The connection ends, once, in ``sink.connection_ended(self, error)``: a
    :class:`redis.exceptions.ConnectionError` when it closed or dropped (or a reply
    said the server cannot serve: ``-LOADING``), :class:`redis.exceptions.InvalidResponse`
    when the protocol broke, or whatever ``replies_received`` raised (the transport is
    then closed: replies can no longer be trusted to match their commands).
    """

    def __init__(self, sink: ReplySink) -> None:
        self._sink: ReplySink | None = sink
        #: Where a socket read's replies go: the handshake's until it is answered, then
        #: the sink's method (looked up once: it is called for every read).
        self._deliver: Callable[[list[Any]], None] = self._greeting_received
        self._reader = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=_ReplyError,
            notEnoughData=_NOT_ENOUGH_DATA,
        )
        self._transport: asyncio.Transport | None = None
        #: The handshake's replies, as they come, and their count.
        self._greeting: list[Any] = []
        self._greeting_size = 0
        self._greeted: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        #: The server's ``ROLE`` reply, when the handshake asked for it (``check_role``).
        self.role: list[Any] | None = None

    # --- for the owner ---

    def write(self, data: bytes) -> None:
        """Write packed commands without waiting for the socket (the transport buffers).
        Raises :class:`redis.exceptions.ConnectionError` once the connection is gone."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise RedisConnectionError("not connected")
        transport.write(data)

    def close(self) -> None:
        """Close the socket at once (what was written still goes out); the sink hears
        nothing more: its owner has given the connection up."""
        self._sink = None
        self._deliver = _ignore
        if not self._greeted.done():
            self._greeted.cancel()
        if self._transport is not None:
            self._transport.close()

    @property
    def closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A transport of asyncio's or uvloop's (which does not subclass asyncio's).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        try:
            reader.feed(data)
            replies: list[Any] = []
            reply = reader.gets()  # a broken protocol raises InvalidResponse
            while reply is not _NOT_ENOUGH_DATA:
                if reply.__class__ is _ReplyError:
                    reply = classify(reply)
                    if isinstance(reply, RedisConnectionError):  # -LOADING and the like
                        raise reply
                replies.append(reply)
                reply = reader.gets()
            if replies:
                self._deliver(replies)
        except Exception as exc:
            self._end(exc)
            if self._transport is not None:
                self._transport.close()

    def eof_received(self) -> bool | None:
        self._end(RedisConnectionError("Redis closed the connection"))
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        error = (
            RedisConnectionError(f"Error while reading from Redis: {exc!r}")
            if exc is not None
            else RedisConnectionError("Redis closed the connection")
        )
        self._end(error)

    def _end(self, error: Exception) -> None:
        sink, self._sink = self._sink, None
        self._deliver = _ignore
        if not self._greeted.done():  # still connecting: the caller of greet() hears it
            self._greeted.set_exception(error)
        elif sink is not None:
            sink.connection_ended(self, error)

    # --- the handshake ---

    async def greet(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send the handshake and wait for its replies; from then on, replies go to
        the sink. An error reply to any of them is raised."""
        self._greeting_size = len(commands)
        self.write(pack_commands(commands))
        replies = await self._greeted
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _greeting_received(self, replies: list[Any]) -> None:
        greeting = self._greeting
        greeting.extend(replies)
        if len(greeting) < self._greeting_size:
            return
        if len(greeting) > self._greeting_size or self._sink is None:
            raise InvalidResponse("unexpected reply from Redis during the handshake")
        self._deliver = self._sink.replies_received
        self._greeted.set_result(greeting)


def _ignore(replies: list[Any]) -> None:
    pass


async def open_connection(
    address: RedisAddress,
    sink: ReplySink,
    seconds: float,
    name: str | None = None,
    check_role: bool = False,
) -> RespConnection:
    """A connected, logged-in RESP3 connection whose replies go to ``sink``.

    With ``check_role``, the handshake also asks ``ROLE`` (kept in
    :attr:`RespConnection.role`) and a server that is not a primary is refused with a
    :class:`redis.exceptions.ConnectionError` (a Sentinel's old primary, demoted, may
    still accept connections).

    Raises :class:`redis.exceptions.ConnectionError` when it cannot connect (a
    :class:`redis.exceptions.TimeoutError` after ``seconds``), an
    :class:`~redis.exceptions.AuthenticationError` when the login is refused, or the
    error reply to the handshake (Redis older than 6 does not know ``HELLO``)."""
    loop = asyncio.get_running_loop()
    connection = RespConnection(sink)

    def protocol() -> RespConnection:
        return connection

    try:
        async with asyncio.timeout(seconds):
            if address.path is not None:
                await loop.create_unix_connection(protocol, address.path)
            else:
                await loop.create_connection(
                    protocol,
                    address.host,
                    address.port,
                    ssl=address.tls,
                    server_hostname=address.host if address.tls is not None else None,
                )
            handshake = address.handshake(name)
            if check_role:
                handshake.append(("ROLE",))
            replies = await connection.greet(handshake)
            if check_role:
                connection.role = replies[-1]
                if not replies[-1] or replies[-1][0] != b"master":
                    raise RedisConnectionError(
                        f"Redis at {address.host}:{address.port} is not a primary "
                        f"(ROLE: {replies[-1][0]!r})"
                    )
    except TimeoutError as exc:
        connection.close()
        raise RedisTimeoutError(f"Timeout connecting to Redis at {address.host}") from exc
    except OSError as exc:
        connection.close()
        raise RedisConnectionError(f"Error connecting to Redis: {exc!r}") from exc
    except BaseException:
        connection.close()
        raise
    return connection
