"""A 413 for request bodies over ``MAX_BODY_BYTES``, before anything parses them.

A path may be allowed more (the attachments upload: ``ATTACHMENT_MAX_BYTES``), with a
413 of its own that says what the limit is.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TOO_LARGE = b'{"detail":"request body too large"}'


@dataclass(frozen=True, slots=True)
class BodyAllowance:
    """Requests whose path ends with ``suffix`` may send up to ``max_bytes``."""

    suffix: str
    max_bytes: int
    detail: str


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int, allowances: tuple[BodyAllowance, ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.allowances = allowances

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: bytes | None = None
        has_body = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                length = value
                has_body = value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body and length is None:
            # Nothing to limit (every GET, the streams among them): no wrappers on
            # the path every event of a stream takes.
            await self.app(scope, receive, send)
            return
        max_bytes, too_large = self.max_bytes, _TOO_LARGE
        for allowance in self.allowances:
            if scope["path"].endswith(allowance.suffix):
                max_bytes = allowance.max_bytes
                too_large = orjson.dumps({"detail": allowance.detail})
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await _reply_413(send, too_large)
            return
        if not has_body:
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # A chunked body that grew past the limit while being read.
            if not started:
                await _reply_413(send, too_large)


async def _reply_413(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
