"""The one SSE response every stream endpoint returns.

It writes ``id:``/``data:`` frames as the listener's buffer fills, a ``: ping``
comment every ``SSE_HEARTBEAT_SECONDS``, and ends cleanly on shutdown with a
``retry:`` hint so the browser reconnects (to another replica).

The heartbeat never touches the subscription: a timer pushes a ping into the
same buffer the events go through. (The seed's
``asyncio.wait_for(subscription.__anext__(), 30)`` cancels ``__anext__`` on the
first idle timeout, which closes the async generator: the stream dies after
30 quiet seconds.) A second, tiny task waits for the client's disconnect and
releases the listener at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from infrastructure.bootstrap.fanout import PING, Listener, ListenerClosed
from infrastructure.bootstrap.sse import SseBus

logger = logging.getLogger(__name__)

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx and friends buffer responses unless told otherwise.
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        bus: SseBus,
        listener: Listener,
        *,
        heartbeat_seconds: float | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.bus = bus
        self.listener = listener
        self.heartbeat = heartbeat_seconds or bus.settings.SSE_HEARTBEAT_SECONDS
        self._on_close = on_close
        self._extra_headers: list[tuple[bytes, bytes]] = []
        self._sending = False
        self._kicked = False
        self._task: asyncio.Task[Any] | None = None
        self.raw_headers = list(_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = self.listener
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        # A listener dropped for falling behind may be stuck in send() on a full
        # socket: cut it loose (the client resumes from history).
        hub_on_close = listener.on_close

        def on_close(closed: Listener) -> None:
            if hub_on_close is not None:
                hub_on_close(closed)
            if closed.close_reason == "slow" and self._sending and self._task is not None:
                self._kicked = True
                self._task.cancel()

        listener.on_close = on_close
        timer: asyncio.TimerHandle | None = None

        def tick() -> None:
            nonlocal timer
            listener.push(PING)
            timer = loop.call_later(self.heartbeat, tick)

        watcher = asyncio.create_task(_watch_disconnect(receive, listener))
        metrics = self.bus.stats
        metrics.open_streams += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            retry = self.bus.settings.SSE_RETRY_MS
            await send(
                {
                    "type": "http.response.body",
                    "body": b"retry: %d\n: connected\n\n" % retry,
                    "more_body": True,
                }
            )
            timer = loop.call_later(self.heartbeat, tick)
            while True:
                try:
                    batch = await listener.next_batch()
                except ListenerClosed as closed:
                    if closed.reason == "shutdown":
                        await send(
                            {
                                "type": "http.response.body",
                                "body": b"retry: %d\n\n" % retry,
                                "more_body": False,
                            }
                        )
                    elif closed.reason != "disconnect":
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                self._sending = True
                await send(
                    {
                        "type": "http.response.body",
                        "body": listener.encode(batch),
                        "more_body": True,
                    }
                )
                self._sending = False
                metrics.count_delivered(batch)
        except asyncio.CancelledError:
            if not self._kicked:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            logger.info("slow SSE client cut off on %s", ",".join(listener.channels))
        except OSError:
            pass  # the client went away mid-write
        finally:
            metrics.open_streams -= 1
            if timer is not None:
                timer.cancel()
            watcher.cancel()
            self.bus.close(listener)
            if self._on_close is not None:
                self._on_close()


async def _watch_disconnect(receive: Receive, listener: Listener) -> None:
    with contextlib.suppress(Exception):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
    listener.close("disconnect")
