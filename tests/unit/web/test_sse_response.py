"""The SSE response's writes: at once while idle, in order when the socket is full.

The "server" here is a plain ASGI ``send`` that records what it is given and, when
told to, blocks the way uvicorn's does on a full socket (awaiting a future until
the socket drains). Each test also runs against a server shaped like uvicorn's
httptools protocol (``send`` bound to an object with a transport and flow control),
where the response writes HTTP/1.1 chunks straight to the transport. The bus is the
real one, in memory mode. (The real uvicorn: tests/integration/web/test_direct_write.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from infrastructure.bootstrap.sse import SseBus
from infrastructure.bus.event import http_chunk
from infrastructure.bus.listener import Listener
from infrastructure.config import Settings
from infrastructure.events import Target
from infrastructure.web.sse_response import EventStreamResponse
from tests.support.auth import make_settings

DEADLINE = 5.0


class Server:
    """An ASGI server's send/receive for one response."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.full: asyncio.Future[None] | None = None  # set: the socket is full
        self.disconnect = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if self.full is not None:
            await self.full  # uvicorn: await self.flow.drain()
        if message["type"] == "http.response.body":
            self.bodies.append(message["body"])

    async def receive(self) -> dict[str, Any]:
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    def text(self) -> str:
        return b"".join(self.bodies).decode()


class _Flow:
    def __init__(self) -> None:
        self.write_paused = False


class UvicornLikeServer(Server):
    """``send`` bound to a cycle the way uvicorn's httptools protocol binds it: the
    response may write chunks to ``transport`` itself. ``bodies`` records every write
    to the wire, direct or through ``send``; ``sends`` counts the ``send`` calls."""

    def __init__(self) -> None:
        self.flow = _Flow()  # before Server.__init__ sets `full`
        super().__init__()
        self.transport = self  # write() below
        self.disconnected = False
        self.chunked_encoding = True
        self.sends = 0

    @property
    def full(self) -> asyncio.Future[None] | None:
        return self._full

    @full.setter
    def full(self, value: asyncio.Future[None] | None) -> None:
        self._full: asyncio.Future[None] | None = value
        self.flow.write_paused = value is not None

    def write(self, data: bytes) -> None:
        self.bodies.append(data)

    async def send(self, message: dict[str, Any]) -> None:
        self.sends += 1
        if self.full is not None:
            await self.full
        if message["type"] == "http.response.body" and message["body"]:
            self.write(http_chunk(message["body"]))


async def until(condition: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


@pytest.fixture
def settings() -> Settings:
    return make_settings(USE_REDIS_SSE=False, SSE_QUEUE_MAXSIZE=5)


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[SseBus]:
    bus = SseBus(settings)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture(params=["asgi-send", "direct"])
def server(request: pytest.FixtureRequest) -> Server:
    return Server() if request.param == "asgi-send" else UvicornLikeServer()


async def start(bus: SseBus, server: Server) -> tuple[Listener, asyncio.Task[None]]:
    listener = await bus.open([Target.session("s1")])
    response = EventStreamResponse(bus, listener)
    scope = {"type": "http", "method": "GET"}
    task = asyncio.create_task(response(scope, server.receive, server.send))  # type: ignore[arg-type]
    await until(lambda: listener.consuming, "the response to start")
    assert (response.direct is not None) == isinstance(server, UvicornLikeServer)
    return listener, task


async def publish(bus: SseBus, n: int) -> None:
    await bus.publish(Target.session("s1"), "bench", {"n": n}, "tests")


async def test_an_idle_stream_writes_each_event_at_once(bus: SseBus, server: Server) -> None:
    listener, task = await start(bus, server)
    writes = len(server.bodies)
    sends = getattr(server, "sends", 0)
    await publish(bus, 1)
    # Written from within publish: no task switch needed before it is on the wire.
    assert len(server.bodies) == writes + 1
    assert '"n":1' in server.bodies[-1].decode()
    assert listener.pending() == 0
    if isinstance(server, UvicornLikeServer):
        # Straight to the transport, as the chunk send() would have written.
        assert server.sends == sends
        frame = server.bodies[-1].split(b"\r\n", 1)[1].removesuffix(b"\r\n")
        assert server.bodies[-1] == http_chunk(frame)
        assert frame.startswith(b"id: ")
        assert frame.endswith(b"\n\n")
    assert bus.stats.delivered == {"bench": 1}
    server.disconnect.set()
    await asyncio.wait_for(task, DEADLINE)
    assert bus.hub.count() == 0


async def test_a_full_socket_keeps_the_order_and_loses_nothing(bus: SseBus, server: Server) -> None:
    listener, task = await start(bus, server)
    server.full = asyncio.get_running_loop().create_future()
    for n in range(1, 4):
        await publish(bus, n)
    # Through send: 1 begins and blocks, 2 and 3 wait in the buffer. Direct: the socket
    # is full, so all three wait in the buffer for the response's send.
    assert listener.pending() == (3 if isinstance(server, UvicornLikeServer) else 2)
    assert '"n":1' not in server.text()
    server.full.set_result(None)
    server.full = None
    await until(lambda: '"n":3' in server.text(), "the rest to be written")
    text = server.text()
    assert text.index('"n":1') < text.index('"n":2') < text.index('"n":3')
    assert bus.stats.delivered == {"bench": 3}
    await publish(bus, 4)  # drained: written at once again
    assert '"n":4' in server.bodies[-1].decode()
    assert listener.pending() == 0
    server.disconnect.set()
    await asyncio.wait_for(task, DEADLINE)


async def test_a_stuck_client_is_dropped_and_its_write_abandoned(
    bus: SseBus, server: Server
) -> None:
    listener, task = await start(bus, server)
    server.full = asyncio.get_running_loop().create_future()  # never drains
    for n in range(10):  # one in flight, then SSE_QUEUE_MAXSIZE=5 buffered, then overflow
        await publish(bus, n)
    assert listener.close_reason == "slow"
    await asyncio.wait_for(task, DEADLINE)  # the response ends by itself
    assert bus.hub.count() == 0
    assert bus.hub.dropped_slow == 1


async def test_a_busy_listener_buffers_instead(settings: Settings) -> None:
    listener = Listener(["ch"], maxsize=10)
    taken: list[object] = []

    def take(item: object) -> bool:
        taken.append(item)
        return True

    listener.consume(take)
    listener.push(b"a")  # nobody waits: buffered
    assert taken == []
    assert listener.pending() == 1
    assert await listener.next_batch() == [b"a"]
    waiter = asyncio.create_task(listener.next_batch())
    await until(lambda: listener._waiter is not None, "the consumer to wait")
    listener.push(b"b")  # the consumer waits with nothing buffered: written at once
    assert taken == [b"b"]
    listener.consume(lambda item: False)  # a writer may refuse: then it is buffered
    listener.push(b"c")
    assert await asyncio.wait_for(waiter, DEADLINE) == [b"c"]
