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
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from infrastructure.bus.api import SseBus
from infrastructure.bus.event import PING, Event, http_chunk
from infrastructure.bus.listener import Listener, ListenerClosed
from infrastructure.web.direct_write import Connection, direct_connection, one_write

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
        #: The rest of a write begun at once that found the socket's buffer full.
        self._pending: asyncio.Future[None] | None = None
        self.raw_headers = list(_HEADERS)
        #: Set while streaming when items can be written straight to the connection.
        self.direct: Connection | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = self.listener
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        timer: asyncio.TimerHandle | None = None

        def tick() -> None:
            nonlocal timer
            listener.push(PING)
            timer = loop.call_later(self.heartbeat, tick)

        watcher = asyncio.create_task(_watch_disconnect(receive, listener))
        metrics = self.bus.stats
        metrics.open_streams += 1
        try:
            retry = self.bus.settings.SSE_RETRY_MS
            with one_write(send):  # the head and the first line: one write, one segment
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"retry: %d\n: connected\n\n" % retry,
                        "more_body": True,
                    }
                )
            timer = loop.call_later(self.heartbeat, tick)
            writer = None
            if inspect.iscoroutinefunction(send):
                if self.bus.settings.SSE_DIRECT_WRITE:
                    self.direct = direct_connection(scope, send)
                writer = self._writer(send, self.direct)
            listener.consume(writer, self._listener_closed)
            while True:
                try:
                    batch = await listener.next_batch()
                except ListenerClosed as closed:
                    if closed.reason == "disconnect" or (
                        closed.reason == "slow" and self._socket_full()
                    ):
                        return  # a final chunk would wait for a client that reads nothing
                    self._sending = True
                    if self._pending is not None:
                        await self._pending
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b"retry: %d\n\n" % retry
                            if closed.reason == "shutdown"
                            else b"",
                            "more_body": False,
                        }
                    )
                    return
                self._sending = True
                if self._pending is not None:
                    await self._pending  # a write begun at once: it goes out first
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
            listener.stop_consuming()
            metrics.open_streams -= 1
            if timer is not None:
                timer.cancel()
            if self._pending is not None:
                self._pending.cancel()
            watcher.cancel()
            self.bus.close(listener)
            if self._on_close is not None:
                self._on_close()

    def _writer(
        self,
        send: Callable[[Message], Coroutine[Any, Any, None]],
        direct: Connection | None,
    ) -> Callable[[Event | bytes], bool]:
        """What the listener calls to write one item at once, from the publisher's
        call stack, while this response waits with nothing buffered. What it writes
        is counted by the hub, once per event (its ``DeliveryCounter``).

        With a ``direct`` connection (uvicorn's httptools server) the item's bytes,
        framed as an HTTP/1.1 chunk, go straight to its transport: the chunk of a
        single-channel event is built once and shared by every listener. While the
        socket's buffer is full (or the client is gone) the item is refused, so it
        waits in the listener's buffer and the response's loop sends it, in order,
        through ``send``, which awaits the drain.

        Otherwise the server's ``send`` coroutine is stepped right here: uvicorn's
        completes in that one step unless the socket's buffer is full. Then the rest
        of that send runs as a task of its own, and nothing else is written (items
        buffer, the response's loop waits for it) until it is done.
        """
        listener = self.listener
        single = len(listener.channels) == 1

        def body_of(item: Event | bytes) -> bytes:
            if single:  # the shared bytes as they are (encode() would join a list of one)
                return item.frame if isinstance(item, Event) else item
            return listener.encode((item,))

        if direct is not None:
            # Fixed for the connection's life: looked up once, not once per event.
            flow, transport_write = direct.flow, direct.transport.write

            def write_direct(item: Event | bytes) -> bool:
                if direct.disconnected or flow.write_paused:
                    return False
                if single and isinstance(item, Event):
                    transport_write(item.chunk)  # built once, shared by every listener
                else:
                    transport_write(http_chunk(body_of(item)))
                return True

            return write_direct

        def write(item: Event | bytes) -> bool:
            if self._pending is not None:
                return False
            step = send({"type": "http.response.body", "body": body_of(item), "more_body": True})
            try:
                waiting_on = step.send(None)
            except StopIteration:
                return True
            except Exception:
                # Written off here; the response's own loop sends the item again and
                # meets the error where it is handled.
                return False
            self._pending = asyncio.ensure_future(_finish(step, waiting_on))
            self._pending.add_done_callback(self._pending_done)
            return True

        return write

    def _listener_closed(self, closed: Listener) -> None:
        """A listener dropped for falling behind may be stuck in send() on a full
        socket: cut it loose (the client resumes from history)."""
        if closed.close_reason == "slow":
            if self._pending is not None:
                self._pending.cancel()
            if self._sending and self._task is not None:
                self._kicked = True
                self._task.cancel()

    def _socket_full(self) -> bool:
        """A write of ours waits for the client's socket to drain."""
        return self._pending is not None or (
            self.direct is not None and self.direct.flow.write_paused
        )

    def _pending_done(self, task: asyncio.Future[None]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled() and task.exception() is not None:
            # The client went away mid-write: the disconnect watcher ends the stream.
            logger.debug("SSE write failed: %r", task.exception())


async def _finish(step: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a coroutine that was stepped by hand and is suspended on ``waiting_on``
    to its end, as a task does: wait for what it waits on, then resume it."""
    while True:
        if asyncio.isfuture(waiting_on):
            # Its outcome is read by the coroutine itself when resumed (result() raises).
            with contextlib.suppress(BaseException):
                await waiting_on
        else:
            await asyncio.sleep(0)  # a bare yield: just let the loop run once
        try:
            waiting_on = step.send(None)
        except StopIteration:
            return


async def _watch_disconnect(receive: Receive, listener: Listener) -> None:
    with contextlib.suppress(Exception):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
    listener.close("disconnect")
