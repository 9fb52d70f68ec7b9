"""Commands written and replies read straight on a redis-py connection.

redis-py's ``read_response`` costs, for every reply, five nested coroutines, a
timeout check, and (RESP3, redis-py's default) a push handler that renders each
pub/sub message into a debug string whether debug logging is on or not. The
bus's two readers, the subscriber and the command pipe, read one reply per event
and per publish of the whole process, so they read here instead: one await per
socket read, and every reply that read completed, parsed by the connection's own
hiredis reader (bytes redis-py already took from the socket, such as what came
with the SUBSCRIBE acknowledgements it read, are not lost).

Commands go the same way, packed by hiredis and written to the connection's
stream in one call, with no task per write (:func:`write_commands`).

The connection stays redis-py's: it connects, authenticates, selects the
database and is closed by redis-py; only the writing of commands and the reading
of replies are done here. The bus's two connections (the subscriber, the command
pipe) are the only users: this module is where redis-py's internals are touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

#: Bytes asked of the socket per read (redis-py's own default read size).
READ_SIZE = 65536


def write_commands(conn: AbstractConnection, commands: Sequence[Sequence[Any]]) -> None:
    """Write ``commands`` to ``conn`` in one call, without waiting for the socket.

    Raises :class:`redis.exceptions.ConnectionError` when ``conn`` is not connected;
    a transport already closing raises what it raises (``RuntimeError``, ``OSError``)."""
    writer = conn._writer
    if writer is None:
        raise RedisConnectionError("not connected")
    writer.write(b"".join(hiredis.pack_command(tuple(command)) for command in commands))


async def read_replies(conn: AbstractConnection) -> list[Any]:
    """The replies ``conn`` has received and no one has read: at least one, waiting
    for the socket if none is complete yet.

    An error reply comes back as a :class:`redis.exceptions.ResponseError` instance
    (the caller fails its command, not the connection); a closed connection raises
    :class:`redis.exceptions.ConnectionError`, a broken protocol
    :class:`redis.exceptions.InvalidResponse`.
    """
    parser: Any = conn._parser
    reader: hiredis.Reader | None = getattr(parser, "_reader", None)
    if not isinstance(reader, hiredis.Reader) or conn._reader is None:
        raise RedisConnectionError("not connected, or not parsed by hiredis")
    replies: list[Any] = []
    while True:
        reply = reader.gets()  # a broken protocol raises InvalidResponse (a RedisError)
        while reply is not NOT_ENOUGH_DATA:
            if isinstance(reply, RedisConnectionError):  # -LOADING and the like
                raise reply
            replies.append(reply)
            reply = reader.gets()
        if replies:
            return replies
        try:
            data = await conn._reader.read(READ_SIZE)
        except OSError as exc:
            raise RedisConnectionError(f"Error while reading from Redis: {exc!r}") from exc
        if not data:
            raise RedisConnectionError("Redis closed the connection")
        reader.feed(data)
