"""Commands written and replies read straight on a redis-py connection.

redis-py's ``read_response`` costs, for every reply, five nested coroutines, a
timeout check, and (RESP3, redis-py's default) a push handler that renders each
pub/sub message into a debug string whether debug logging is on or not. The
bus's connection (the command pipe, which also carries the subscriptions) reads
one reply per publish and one push per event of the whole process, so it reads
here instead
(:class:`ReplyStream`): the connection's transport is handed to a protocol whose
``data_received`` parses what arrived with the connection's own hiredis reader and
passes every reply it completed to a callback, with no task in between (bytes
redis-py already took from the socket, such as what came with the SUBSCRIBE
acknowledgements it read, are not lost).

Commands go the other way, packed by hiredis and written to the connection's
stream in one call, with no task per write (:func:`pack_commands`,
:func:`write_packed`).

The connection stays redis-py's: it connects, authenticates, selects the
database and is closed by redis-py; only the writing of commands and the reading
of replies are done here. The bus's connection (the command pipe) is the only
user: this module is where redis-py's internals are touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError


def pack_commands(commands: Sequence[Sequence[Any]]) -> bytes:
    """``commands`` in the protocol's form, back to back (``hiredis.pack_command`` packs
    one)."""
    return b"".join(hiredis.pack_command(tuple(command)) for command in commands)


def write_packed(conn: AbstractConnection, data: bytes) -> None:
    """Write packed commands to ``conn``, without waiting for the socket.

    Raises :class:`redis.exceptions.ConnectionError` when ``conn`` is not connected;
    a transport already closing raises what it raises (``RuntimeError``, ``OSError``)."""
    writer = conn._writer
    if writer is None:
        raise RedisConnectionError("not connected")
    writer.write(data)


class ReplyStream(asyncio.Protocol):
    """The reading side of a connected redis-py connection, taken over: every reply a
    socket read completes is handed to ``on_replies`` from the event loop's callback,
    as the bytes arrive. No task waits on the socket, so a reply costs no task switch
    and no ``StreamReader`` (a command pipe's round trip: 55,000 instructions read by
    a task, measured with callgrind, against 16,000 for a bare protocol).

    It stands in for redis-py's ``StreamReaderProtocol`` on the transport and passes
    everything but the data on to it (flow control, the end of the connection), so
    that redis-py's writer and its ``disconnect()`` work as before.

    The connection ends, once, in ``on_lost(error)``: a
    :class:`redis.exceptions.ConnectionError` when it closed or dropped, a
    ``RedisError`` when the protocol broke (or a reply was ``-LOADING`` and the like),
    or whatever ``on_replies`` raised (the transport is then closed: replies can no
    longer be trusted to be matched). An error reply to a command is a reply: a
    :class:`redis.exceptions.ResponseError` instance among the others.
    """

    def __init__(
        self,
        conn: AbstractConnection,
        on_replies: Callable[[list[Any]], None],
        on_lost: Callable[[Exception], None],
    ) -> None:
        parser: Any = conn._parser
        reader = getattr(parser, "_reader", None)
        writer = conn._writer
        if not isinstance(reader, hiredis.Reader) or writer is None or conn._reader is None:
            raise RedisConnectionError("not connected, or not parsed by hiredis")
        # The parser redis-py read the handshake with: a reply it holds in part, or
        # whole but not yet asked for, is not lost.
        self._reader: hiredis.Reader = reader
        self._on_replies = on_replies
        self._on_lost: Callable[[Exception], None] | None = on_lost
        self._transport: Any = writer.transport
        self._inner: asyncio.BaseProtocol = self._transport.get_protocol()
        self._transport.set_protocol(self)
        # Bytes redis-py's stream took off the socket and no one parsed yet.
        buffered: bytearray = getattr(conn._reader, "_buffer", bytearray())
        if buffered:
            reader.feed(bytes(buffered))
            buffered.clear()

    def deliver_buffered(self) -> None:
        """Hand over the replies that were complete before the take-over (call it once
        the caller is ready for them; the socket's next bytes would otherwise bring
        them along)."""
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        try:
            if data:
                reader.feed(data)
            replies: list[Any] = []
            reply = reader.gets()  # a broken protocol raises InvalidResponse (a RedisError)
            while reply is not NOT_ENOUGH_DATA:
                if isinstance(reply, RedisConnectionError):  # -LOADING and the like
                    raise reply
                replies.append(reply)
                reply = reader.gets()
            if replies:
                self._on_replies(replies)
        except Exception as exc:
            self._end(exc)
            self._transport.close()

    def stop(self) -> None:
        """Deliver nothing more, and do not call ``on_lost``: the owner has given the
        connection up (and closes it)."""
        self._on_replies = _ignore
        self._on_lost = None

    def eof_received(self) -> bool | None:
        self._end(RedisConnectionError("Redis closed the connection"))
        return self._inner.eof_received()  # type: ignore[attr-defined, no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(
            RedisConnectionError(f"Error while reading from Redis: {exc!r}")
            if exc is not None
            else RedisConnectionError("Redis closed the connection")
        )
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _end(self, error: Exception) -> None:
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost(error)


def _ignore(replies: list[Any]) -> None:
    pass
