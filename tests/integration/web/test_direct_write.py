"""Direct and joined writes under the real uvicorn (the pinned version, its httptools protocol).

``web/direct_write.py`` relies on what uvicorn's ``RequestResponseCycle`` offers; these
tests fail if an upgrade takes it away (the streams would silently fall back to the
slower ``send`` path). They also read the real bytes off a real socket: chunked SSE a
browser can parse, in order, nothing lost when the client stops reading for a while
and the socket's buffer fills up. And ``one_write``: a JSON reply, and a stream's head
with its first line, each reach the socket in one write, uvicorn's keep-alive intact.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from infrastructure.bootstrap.sse import SseBus
from infrastructure.events import Target
from infrastructure.web.fast_path import as_json
from infrastructure.web.sse_response import EventStreamResponse
from tests.support.auth import make_settings
from tests.support.processes import async_wait_until, free_port

TIMEOUT = 20.0


class CountingTransport:
    """uvicorn's transport, each write recorded on its way through."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


@dataclass
class StreamServer:
    """uvicorn (httptools) serving one SSE stream of session ``s1`` per request, or at
    ``/json`` a small JSON reply. Each request's writes are counted."""

    bus: SseBus
    port: int
    responses: list[EventStreamResponse] = field(default_factory=list)
    transports: list[CountingTransport] = field(default_factory=list)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        cycle = send.__self__  # type: ignore[attr-defined]
        cycle.transport = CountingTransport(cycle.transport)
        self.transports.append(cycle.transport)
        if scope["path"] == "/json":
            await as_json(202, {"id": "1-0", "n": len(self.transports)})(scope, receive, send)
            return
        listener = await self.bus.open([Target.session("s1")])
        response = EventStreamResponse(self.bus, listener)
        self.responses.append(response)
        await response(scope, receive, send)

    async def publish(self, n: int, padding: int = 0) -> None:
        await self.bus.publish(Target.session("s1"), "bench", {"n": n, "pad": "x" * padding})


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[StreamServer]:
    bus = SseBus(make_settings(USE_REDIS_SSE=False, SSE_QUEUE_MAXSIZE=100_000, **settings))
    await bus.start()
    server = StreamServer(bus, free_port())
    config = uvicorn.Config(
        server.app,
        host="127.0.0.1",
        port=server.port,
        http="httptools",
        interface="asgi3",
        lifespan="off",
        # Leave the process's logging alone (uvicorn's own config would stop its loggers
        # propagating, for every later test in this process).
        log_config=None,
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    await async_wait_until(lambda: uv.started, TIMEOUT, description="uvicorn to start")
    yield server
    uv.should_exit = True
    await asyncio.wait_for(task, TIMEOUT)
    await bus.stop()


@pytest.fixture
async def stream_server() -> AsyncIterator[StreamServer]:
    async with serving() as server:
        yield server


@asynccontextmanager
async def open_stream(server: StreamServer) -> AsyncIterator[asyncio.StreamReader]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower(), head
        await async_wait_until(
            lambda: server.responses and server.responses[-1].listener.consuming,
            TIMEOUT,
            description="the stream to be open",
        )
        yield reader
    finally:
        writer.close()
        await writer.wait_closed()


async def read_events(reader: asyncio.StreamReader, count: int) -> list[int]:
    """Decode the chunked body as a client does; the ``n`` of the first ``count`` events."""
    body = b""
    numbers: list[int] = []
    while len(numbers) < count:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT)
        size = int(size_line.strip(), 16)
        assert size > 0, "the stream ended"
        chunk = await asyncio.wait_for(reader.readexactly(size + 2), TIMEOUT)
        assert chunk.endswith(b"\r\n"), "a chunk's framing is broken"
        body += chunk[:-2]
        *frames, body = body.split(b"\n\n")
        for frame in frames:
            if b"data: " in frame:
                assert frame.startswith(b"id: "), frame[:80]
                match = re.search(rb'"n":(\d+)', frame)
                assert match is not None, frame[:80]
                numbers.append(int(match[1]))
    return numbers


async def test_the_pinned_uvicorn_offers_what_direct_writes_use(
    stream_server: StreamServer,
) -> None:
    async with open_stream(stream_server) as reader:
        assert stream_server.responses[-1].direct is not None, (
            "uvicorn's httptools cycle no longer offers transport / flow.write_paused / "
            "disconnected / chunked_encoding: see infrastructure/web/direct_write.py"
        )
        for n in range(3):
            await stream_server.publish(n)
        assert await read_events(reader, 3) == [0, 1, 2]


async def test_a_client_that_stops_reading_gets_everything_in_order(
    stream_server: StreamServer,
) -> None:
    async with open_stream(stream_server) as reader:
        response = stream_server.responses[-1]
        direct = response.direct
        assert direct is not None
        # The client reads nothing while 4 MB are published: the socket's buffers fill,
        # the transport pauses, later events wait in the listener's buffer.
        total = 2_000
        for n in range(total):
            await stream_server.publish(n, padding=2_000)
        assert direct.flow.write_paused, "the socket never filled: publish more"
        assert await read_events(reader, total) == list(range(total))
        # Drained: written at once again.
        await async_wait_until(
            lambda: not direct.flow.write_paused and response.listener.pending() == 0,
            TIMEOUT,
            description="the stream to drain",
        )
        await stream_server.publish(total)
        assert await read_events(reader, 1) == [total]


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    length = re.search(rb"content-length: (\d+)", head.lower())
    assert length is not None, head
    body = await asyncio.wait_for(reader.readexactly(int(length[1])), TIMEOUT)
    return head, body


async def test_a_json_reply_is_one_write_and_the_connection_stays_usable(
    stream_server: StreamServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stream_server.port)
    try:
        for n in (1, 2):  # two requests on one kept-alive connection
            writer.write(b"POST /json HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
            head, body = await _read_response(reader)
            assert head.startswith(b"HTTP/1.1 202"), head
            assert body == b'{"id":"1-0","n":%d}' % n
            writes = stream_server.transports[-1].writes
            assert writes == [head + body], f"{len(writes)} writes: {writes!r}"
        # Connection: close: uvicorn closes after the reply, which went out first, whole.
        writer.write(b"POST /json HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        head, body = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 202")
        assert b"connection: close" in head.lower()
        assert body == b'{"id":"1-0","n":3}'
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"", "not closed"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_stream_head_and_first_line_are_one_write(stream_server: StreamServer) -> None:
    async with open_stream(stream_server):
        first = stream_server.transports[-1].writes[0]
        head, _, body = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), first
        # The body so far: one HTTP/1.1 chunk holding the first line.
        size, _, chunk = body.partition(b"\r\n")
        assert chunk.startswith(b"retry: "), first
        assert chunk == b"%s\r\n" % chunk[: int(size, 16)], first
        assert chunk.endswith(b": connected\n\n\r\n"), first


async def test_direct_writes_can_be_turned_off() -> None:
    async with serving(SSE_DIRECT_WRITE=False) as server, open_stream(server) as reader:
        assert server.responses[-1].direct is None
        for n in range(3):
            await server.publish(n)
        assert await read_events(reader, 3) == [0, 1, 2]
