"""The OpenAI-compatible bot against a real HTTP server on a loopback port: a raw
``asyncio.start_server`` responder that speaks just enough HTTP/1.1 to stream SSE
chunks, each test scripting what the "model" sends and when."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from infrastructure.sessions.models import (
    ChatMessage,
    SenderRole,
    Session,
    SessionStatus,
    ms_to_datetime,
)
from products.ai_chatbot.responders.openai_compat import (
    FALLBACK_MESSAGE,
    INTERRUPTED_MESSAGE,
    OpenAICompatResponder,
)
from tests.support.processes import free_port

SESSION = Session(
    session_name="s1",
    status=SessionStatus.AI,
    created_at=ms_to_datetime(0),
    updated_at=ms_to_datetime(0),
)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Reply:
    """The server side of one exchange: status line and SSE chunks, chunk-encoded."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def start(self, status: str = "200 OK", content_type: str = "text/event-stream") -> None:
        self.writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        await self.writer.drain()

    async def chunk(self, text: str) -> None:
        data = text.encode()
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def event(self, payload: Any) -> None:
        await self.chunk("data: " + orjson.dumps(payload).decode() + "\n\n")

    async def delta(self, content: str) -> None:
        await self.event({"choices": [{"index": 0, "delta": {"content": content}}]})

    async def done(self) -> None:
        await self.chunk("data: [DONE]\n\n")
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()


Script = Callable[[Request, Reply], Awaitable[None]]


@dataclass
class FakeModelServer:
    script: Script
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode().split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (h.partition(":") for h in header_lines if h)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, orjson.loads(body) if body else None)
            self.requests.append(request)
            await self.script(request, Reply(writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: part of some tests
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[FakeModelServer]]]:
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[None]] = set()

    async def start(script: Script) -> FakeModelServer:
        fake = FakeModelServer(script)

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await fake.handle(reader, writer)
            finally:
                handlers.discard(task)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}/v1"
        return fake

    yield start
    for task in list(handlers):  # a handler still waiting (the timeout test)
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def responder(url: str, http: httpx.AsyncClient, **options: Any) -> OpenAICompatResponder:
    return OpenAICompatResponder(url, "sk-test", "tiny-model", http, **options)


async def test_deltas_stream_in_order(serve: Any, http: httpx.AsyncClient) -> None:
    more = asyncio.Event()

    async def script(request: Request, reply: Reply) -> None:
        await reply.start()
        await reply.delta("你好")
        await more.wait()  # the rest only after the client has shown the first delta
        await reply.chunk(": keep-alive comment\n\n")
        await reply.event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for piece in ("，我是", "客服", " bot."):
            await reply.delta(piece)
        await reply.event({"choices": [], "usage": {"total_tokens": 9}})
        await reply.done()

    server = await serve(script)
    history = [
        ChatMessage(session_name="s1", sender=SenderRole.CUSTOMER, content="hi"),
        ChatMessage(session_name="s1", sender=SenderRole.BOT, content="Hello!"),
        ChatMessage(session_name="s1", sender=SenderRole.SYSTEM, content="internal note"),
        ChatMessage(session_name="s1", sender=SenderRole.CUSTOMER, content="你是谁？"),
    ]
    stream = responder(server.url, http).reply(SESSION, history, "你是谁？")

    first = await anext(stream)
    assert first == "你好"  # arrived while the server still held back the rest
    more.set()
    rest = [delta async for delta in stream]
    assert rest == ["，我是", "客服", " bot."]

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["accept"] == "text/event-stream"
    assert request.body["model"] == "tiny-model"
    assert request.body["stream"] is True
    assert [(m["role"], m["content"]) for m in request.body["messages"][1:]] == [
        ("user", "hi"),
        ("assistant", "Hello!"),
        ("user", "你是谁？"),  # once, though it is also the last history entry
    ]
    assert request.body["messages"][0]["role"] == "system"


async def test_server_error_yields_the_fallback(serve: Any, http: httpx.AsyncClient) -> None:
    async def script(request: Request, reply: Reply) -> None:
        await reply.start("500 Internal Server Error", "application/json")
        await reply.chunk('{"error": {"message": "model crashed"}}')
        reply.writer.write(b"0\r\n\r\n")

    server = await serve(script)
    chunks = [c async for c in responder(server.url, http).reply(SESSION, [], "hi")]
    assert chunks == [FALLBACK_MESSAGE]


async def test_error_event_in_the_stream_yields_the_fallback(
    serve: Any, http: httpx.AsyncClient
) -> None:
    async def script(request: Request, reply: Reply) -> None:
        await reply.start()
        await reply.event({"error": {"message": "rate limited"}})
        await reply.done()

    server = await serve(script)
    assert [c async for c in responder(server.url, http).reply(SESSION, [], "hi")] == [
        FALLBACK_MESSAGE
    ]


async def test_a_stream_cut_short_says_so(serve: Any, http: httpx.AsyncClient) -> None:
    async def script(request: Request, reply: Reply) -> None:
        await reply.start()
        await reply.delta("Half an ans")
        reply.writer.transport.abort()  # the connection dies mid-answer

    server = await serve(script)
    chunks = [c async for c in responder(server.url, http).reply(SESSION, [], "hi")]
    assert chunks == ["Half an ans", INTERRUPTED_MESSAGE]


async def test_a_silent_server_times_out_into_the_fallback(
    serve: Any, http: httpx.AsyncClient
) -> None:
    never = asyncio.Event()

    async def script(request: Request, reply: Reply) -> None:
        await reply.start()
        await never.wait()  # headers, then nothing

    server = await serve(script)
    bot = responder(server.url, http, timeout=0.3)
    assert [c async for c in bot.reply(SESSION, [], "hi")] == [FALLBACK_MESSAGE]


async def test_nobody_listening_yields_the_fallback(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert [c async for c in responder(url, http).reply(SESSION, [], "hi")] == [FALLBACK_MESSAGE]


async def test_an_empty_answer_yields_the_fallback(serve: Any, http: httpx.AsyncClient) -> None:
    async def script(request: Request, reply: Reply) -> None:
        await reply.start()
        await reply.done()

    server = await serve(script)
    assert [c async for c in responder(server.url, http).reply(SESSION, [], "hi")] == [
        FALLBACK_MESSAGE
    ]


async def test_no_api_key_sends_no_authorization(serve: Any, http: httpx.AsyncClient) -> None:
    async def script(request: Request, reply: Reply) -> None:
        await reply.start()
        await reply.delta("ok")
        await reply.done()

    server = await serve(script)
    bot = OpenAICompatResponder(server.url, "", "m", http)
    assert [c async for c in bot.reply(SESSION, [], "hi")] == ["ok"]
    assert "authorization" not in server.requests[0].headers
