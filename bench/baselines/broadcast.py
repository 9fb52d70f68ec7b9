"""The encode/broadcaster peer: what a FastAPI user who picks ``broadcaster`` would write.

``broadcaster`` (encode, pinned in the ``dev`` extra) keeps one Redis PubSub connection and
one publishing connection per process and fans each message out to an unbounded
``asyncio.Queue`` per subscriber; a reading task per subscriber awaits its queue. The SSE
endpoint below is its README's pattern (``async with broadcast.subscribe(channel)`` inside a
``StreamingResponse``); the publish endpoint is ``broadcast.publish`` of the same envelope the
naive baseline sends. No history, no ids, no auth, no heartbeat (broadcaster has none).

Used as its users use it, it loses events in two races of its own, which the benchmark counts:

* ``Broadcast.subscribe`` awaits the backend's SUBSCRIBE for a channel's first subscriber
  before recording it, so subscribers of a new channel arriving meanwhile each subscribe
  again and each replaces the channel's set of queues: all but the last get nothing;
* the Redis backend's reading task starts ``pubsub.listen()`` as soon as a first channel is
  asked for; if that runs before redis-py has recorded the channel, ``listen()`` ends at
  once (no channels yet) and the task waits for the next *new* channel (a variant of
  encode/broadcaster#133). With one channel, as in scenario (b), nothing may arrive at all.

Same URLs as the product (``GET /api/sessions/{name}/events``, ``POST /api/events/{kind}/{target}``)
so the load generator drives every target the same way. The module is not named
``broadcaster``: that is the library. Run: ``uvicorn bench.baselines.broadcast:app``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from broadcaster import Broadcast
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("REDIS_SSE_CHANNEL_PREFIX", "sse:")

broadcast = Broadcast(REDIS_URL)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with broadcast:
        yield


app = FastAPI(title="encode/broadcaster SSE", lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/sessions/{session_name}/events")
async def session_events(session_name: str) -> StreamingResponse:
    async def event_stream() -> AsyncIterator[str]:
        async with broadcast.subscribe(f"{PREFIX}session:{session_name}") as subscriber:
            yield ": connected\n\n"  # once subscribed: the generator's "connected"
            while True:  # what ``async for event in subscriber`` does (typed as it is not)
                event = await subscriber.get()
                yield f"data: {event.message}\n\n"

    return StreamingResponse(event_stream(), media_type="text/event-stream")


@app.post("/api/events/{kind}/{target}", status_code=202)
async def publish(kind: str, target: str, request: Request, type: str = "notification") -> Any:
    payload = await request.json()
    envelope = {"type": type, "payload": payload, "timestamp": int(time.time()), "source": "bc"}
    await broadcast.publish(f"{PREFIX}{kind}:{target}", json.dumps(envelope))
    return JSONResponse({"ok": True}, status_code=202)
