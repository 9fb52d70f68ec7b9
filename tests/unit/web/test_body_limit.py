"""The body limit: ``MAX_BODY_BYTES`` everywhere, more where a path is allowed more (the
attachments upload), each with its own clear 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
from starlette.types import Receive, Scope, Send

from infrastructure.web.body_limit import BodyAllowance, BodyLimitMiddleware


async def _echo_size(scope: Scope, receive: Receive, send: Send) -> None:
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


APP = BodyLimitMiddleware(
    _echo_size, max_bytes=100, allowances=(BodyAllowance("/attachments", 1000, "too big a file"),)
)


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://test")


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 50):
        yield b"x" * 50


async def test_each_path_has_its_limit_and_its_message() -> None:
    async with _client() as http:
        assert (await http.post("/api/x", content=b"x" * 100)).text == "100"
        small = await http.post("/api/x", content=b"x" * 101)
        assert small.status_code == 413
        assert orjson.loads(small.content) == {"detail": "request body too large"}
        allowed = await http.post("/api/sessions/s1/attachments", content=b"x" * 1000)
        assert allowed.text == "1000"
        big = await http.post("/api/sessions/s1/attachments", content=b"x" * 1001)
        assert big.status_code == 413
        assert orjson.loads(big.content) == {"detail": "too big a file"}


async def test_a_chunked_body_is_stopped_where_it_passes_the_limit() -> None:
    async with _client() as http:
        fits = await http.post("/api/sessions/s1/attachments", content=_chunks(1000))
        assert fits.text == "1000"
        cut = await http.post("/api/sessions/s1/attachments", content=_chunks(5000))
        assert cut.status_code == 413
        assert orjson.loads(cut.content) == {"detail": "too big a file"}
