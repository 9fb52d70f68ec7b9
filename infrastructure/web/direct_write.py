"""Writing an event's bytes straight to the connection, under uvicorn's httptools server.

Why: a fan-out writes each event once per listener. Through the ASGI ``send`` every
write costs a message dict, a coroutine stepped by hand and uvicorn's checks, and
then the chunk framing is built again for every listener, although all the
listeners of a channel write the same bytes. Written directly, the HTTP/1.1 chunk is
built once per event (``Event.chunk``) and each listener costs one
``transport.write`` (the figures: bench/README.md).

What this relies on: uvicorn's httptools protocol binds ``send`` to its
``RequestResponseCycle``, which has ``transport``, ``flow.write_paused`` (the
socket's buffer is full), ``disconnected`` and ``chunked_encoding`` (the response is
HTTP/1.1 chunked). uvicorn is pinned, and ``tests/integration/web/test_direct_write.py``
fails if a new version stops offering them. Anything else (another server, uvicorn's
h11 protocol, a ``send`` wrapped by a middleware, an HTTP/1.0 client) finds no such
cycle and goes through ``send``.

:func:`one_write` serves responses that are written whole at once (a publish's JSON
reply, a stream's head and first line): uvicorn writes the head at
``http.response.start`` and the body at the next ``send``, two system calls and two
TCP segments, each paid on both ends of the socket. Inside ``one_write`` uvicorn
still does all of its work (headers, framing, keep-alive, the next pipelined request);
only its writes are gathered and go out as one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from starlette.types import Scope


class _Flow(Protocol):
    write_paused: bool


class Connection(Protocol):
    """The part of uvicorn's ``RequestResponseCycle`` a direct write uses."""

    transport: asyncio.WriteTransport
    flow: _Flow
    disconnected: bool
    chunked_encoding: bool | None


_ATTRIBUTES = ("transport", "flow", "disconnected", "chunked_encoding")


def _cycle_of(send: Callable[..., Any]) -> Any:
    """The object ``send`` is bound to (uvicorn's ``RequestResponseCycle``), if any."""
    return getattr(send, "__self__", None)


def direct_connection(scope: Scope, send: Callable[..., Any]) -> Connection | None:
    """The connection behind ``send`` when bytes can be written to it directly: called
    once the response has started, so that its framing is known. ``None`` otherwise."""
    cycle = _cycle_of(send)
    if cycle is None or not all(hasattr(cycle, name) for name in _ATTRIBUTES):
        return None
    if scope.get("method") == "HEAD" or not cycle.chunked_encoding:
        return None  # uvicorn writes no body for HEAD; without chunking, no framing to add
    if not hasattr(cycle.flow, "write_paused"):
        return None
    return cast(Connection, cycle)


class _Gathered:
    """Stands in for the transport while a response is gathered: keeps what is
    written, hands every other call to the transport. Closing writes what was kept
    first (uvicorn closes after the last body of a ``Connection: close`` response)."""

    __slots__ = ("_parts", "_transport")

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def one_write(send: Callable[..., Any]) -> AbstractContextManager[None]:
    """What uvicorn writes for the ``send`` calls made inside reaches the socket as
    one write, on leaving: for a response, or its start, that is sent whole at once
    (nothing reaches the client before the block ends). Under another server, or a
    ``send`` that is not uvicorn's, the sends are left as they are."""
    return _OneWrite(send)


class _OneWrite:
    """:func:`one_write`'s context manager, a plain class: every publish's reply goes
    through it, and ``contextlib.contextmanager``'s generator cost more (bench/README.md)."""

    __slots__ = ("_cycle", "_gathered", "_transport")

    def __init__(self, send: Callable[..., Any]) -> None:
        cycle = _cycle_of(send)
        transport = getattr(cycle, "transport", None)
        if transport is None or not callable(getattr(transport, "write", None)):
            cycle = None
        self._cycle: Any = cycle
        self._transport: Any = transport
        self._gathered: _Gathered | None = None

    def __enter__(self) -> None:
        if self._cycle is not None:
            self._gathered = _Gathered(self._transport)
            self._cycle.transport = self._gathered

    def __exit__(self, *exc_info: object) -> None:
        gathered = self._gathered
        if gathered is None:
            return
        if self._cycle.transport is gathered:
            self._cycle.transport = self._transport
        gathered.flush()
