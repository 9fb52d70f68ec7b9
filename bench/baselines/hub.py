"""The Python ceiling: a bare ASGI hub, no Redis, no framework (the issue's "bare ASGI hub").

Channels in a dict; per listener one bounded ``asyncio.Queue`` and the request's own task
doing ``await send(await queue.get())``; each event encoded once and the same bytes queued
for every listener. A second, idle task per listener waits for the disconnect (it costs
nothing per event) so that a closed stream leaves its channel.

Same URLs as the product and the naive baseline, so the load generator drives all three the
same way. Run: ``uvicorn bench.baselines.hub:app --loop uvloop --http httptools``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.types import Receive, Scope, Send

QUEUE_SIZE = 1000
_STREAM_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

channels: dict[str, set[asyncio.Queue[bytes | None]]] = {}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup: nothing to set up
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    parts = path.strip("/").split("/")
    if scope["method"] == "GET" and len(parts) == 4 and parts[3] == "events":
        await _stream(f"session:{parts[2]}", receive, send)
    elif scope["method"] == "POST" and len(parts) == 4 and parts[:2] == ["api", "events"]:
        await _publish(f"{parts[2]}:{parts[3]}", receive, send)
    elif path == "/healthz":
        await _reply(send, 200, b'{"status":"ok"}')
    else:
        await _reply(send, 404, b'{"detail":"not found"}')


async def _stream(channel: str, receive: Receive, send: Send) -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_SIZE)
    channels.setdefault(channel, set()).add(queue)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)

    watcher = asyncio.create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
        await send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})
        while (frame := await queue.get()) is not None:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
    finally:
        watcher.cancel()
        listeners = channels.get(channel)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                del channels[channel]


async def _publish(channel: str, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    envelope: dict[str, Any] = {"type": "bench", "payload": json.loads(body)}
    frame = f"data: {json.dumps(envelope, separators=(',', ':'))}\n\n".encode()
    for queue in tuple(channels.get(channel, ())):
        try:
            queue.put_nowait(frame)
        except asyncio.QueueFull:  # a listener this far behind is dropped, not waited for
            channels[channel].discard(queue)
    await _reply(send, 202, b'{"ok":true}')


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
