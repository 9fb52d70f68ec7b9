"""The spec's design, written plainly: the baseline every figure is a ratio against.

* one Redis PubSub (one Redis connection) per SSE request, through ``redis.asyncio``;
* the connection pool raised (``NAIVE_REDIS_POOL``, default 20,000) so that it works at all
  with thousands of browsers;
* the seed's heartbeat, ``asyncio.wait_for(subscription.__anext__(), timeout=30.0)``
  (whose timeout closes the generator: a stream dies after 30 idle seconds);
* publish = ``PUBLISH`` of the JSON envelope; no history, no ids, no auth.

Same URLs as the product (``GET /api/sessions/{name}/events``, ``POST /api/events/{kind}/{target}``)
so the load generator drives both the same way. Run: ``uvicorn bench.baselines.naive:app``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("REDIS_SSE_CHANNEL_PREFIX", "sse:")
POOL = int(os.environ.get("NAIVE_REDIS_POOL", "20000"))

_redis: aioredis.Redis | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global _redis
    _redis = aioredis.Redis.from_url(REDIS_URL, max_connections=POOL)
    yield
    await _redis.aclose()


app = FastAPI(title="naive SSE (spec design)", lifespan=lifespan)


async def subscribe(pubsub: Any) -> AsyncIterator[dict[str, Any]]:
    """The seed's ``RedisSseManager.subscribe``: yields the decoded messages."""
    async for message in pubsub.listen():
        if message["type"] == "message":
            yield json.loads(message["data"])


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/sessions/{session_name}/events")
async def session_events(session_name: str, request: Request) -> StreamingResponse:
    assert _redis is not None
    pubsub = _redis.pubsub()
    await pubsub.subscribe(f"{PREFIX}session:{session_name}")

    async def event_stream() -> AsyncIterator[str]:
        subscription = subscribe(pubsub)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(subscription.__anext__(), timeout=30.0)
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                except StopAsyncIteration:
                    return
                yield f"data: {json.dumps(event)}\n\n"
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    return StreamingResponse(event_stream(), media_type="text/event-stream")


@app.post("/api/events/{kind}/{target}", status_code=202)
async def publish(kind: str, target: str, request: Request, type: str = "notification") -> Any:
    assert _redis is not None
    payload = await request.json()
    envelope = {"type": type, "payload": payload, "timestamp": int(time.time()), "source": "naive"}
    await _redis.publish(f"{PREFIX}{kind}:{target}", json.dumps(envelope))
    return JSONResponse({"ok": True}, status_code=202)
