"""The load generator's hot path: SSE subscribers, raw HTTP/1.1 over asyncio protocols.

Subscribers are :class:`asyncio.Protocol` objects that decode the chunked SSE body
and pull ``(t, n)`` out of each event with one regular expression: no HTTP client
library, no JSON decoding, one ``time.time_ns()`` per TCP read. What they receive is
published by ``publisher.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections.abc import Callable, Sequence
from typing import cast

#: ``"t":<ns>,"n":<seq>`` in a bus payload (orjson writes no spaces; json.dumps does).
BUS_EVENT = re.compile(rb'"t": ?(\d+), ?"n": ?(\d+)')
#: ``bench <ns> <seq>`` inside a chat message's content (scenario e).
CHAT_EVENT = re.compile(rb"bench (\d+) (\d+)")


class Sink:
    """Everything the subscribers measure, shared (one process, one loop)."""

    def __init__(self) -> None:
        self.latency_ms: array[float] = array("f")
        self.delivered = 0
        self.recording = True

    def reset(self) -> None:
        self.latency_ms = array("f")
        self.delivered = 0


class Subscriber(asyncio.Protocol):
    """One SSE stream. ``connected`` resolves on the first body bytes (the server's
    ``: connected`` comment, sent once the subscription is in place)."""

    def __init__(
        self,
        key: int,
        request: bytes,
        sink: Sink,
        pattern: re.Pattern[bytes],
        connected: asyncio.Future[float],
    ) -> None:
        self.key = key
        self.request = request
        self.sink = sink
        self.pattern = pattern
        self.connected = connected
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.headers_done = False
        self.chunked = False
        #: Set once the head is read, when the body is chunked: reads that hold exactly
        #: one whole chunk take the short way in :meth:`data_received`.
        self.whole_chunks = False
        self.raw = bytearray()
        self.body = bytearray()
        self.chunk_left = 0
        self.crlf_left = 0
        self.seen = bytearray()
        self.max_n = -1
        self.distinct = 0
        self.dups = 0
        self.out_of_order = 0
        self.closed = False
        self.error: str | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.connected.done():
            self.error = self.error or f"closed before connected ({exc!r})"
            self.connected.set_exception(ConnectionError(self.error))

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if self.whole_chunks and not (self.raw or self.body or self.chunk_left or self.crlf_left):
            # The usual read at speed: one whole chunk of whole events, nothing pending,
            # counted without copying through the buffers: 1.9 us of Python per event
            # instead of 3.05 (the generator shares the machine with what it measures).
            eol = data.find(b"\r\n")
            end = len(data) - 2
            if 0 < eol < 9 and data.endswith(b"\r\n", end):
                try:
                    size = int(data[:eol], 16)
                except ValueError:
                    size = -1
                if size > 0 and size == end - eol - 2 and data.endswith(b"\n\n", 0, end):
                    self._record(data, eol + 2, end - 2, now)
                    return
        if not self.headers_done:
            self.raw += data
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.raw[:end]).lower()
            rest = bytes(self.raw[end + 4 :])
            self.raw.clear()
            try:
                self.status = int(head[9:12])
            except ValueError:
                self.status = -1
            self.headers_done = True
            self.chunked = b"transfer-encoding: chunked" in head
            if self.status != 200:
                self.error = f"HTTP {self.status} {rest[:120]!r}"
                if not self.connected.done():
                    self.connected.set_exception(ConnectionError(self.error))
                if self.transport is not None:
                    self.transport.close()
                return
            self.whole_chunks = self.chunked
            if not rest:
                return
            data = rest
        if self.chunked:
            self._dechunk(data)
        else:
            self.body += data
        body = self.body
        end = body.rfind(b"\n\n")
        if end < 0:
            return
        self._record(body, 0, end, now)
        del body[: end + 2]

    def _record(self, body: bytes | bytearray, start: int, end: int, now: int) -> None:
        """Count the events of ``body[start:end]`` (whole SSE frames), received at ``now``."""
        if not self.connected.done():
            self.connected.set_result(time.monotonic())
        sink = self.sink
        if not sink.recording:
            return
        lat = sink.latency_ms
        seen = self.seen
        count = 0
        for sent, number in self.pattern.findall(body, start, end):
            n = int(number)
            count += 1
            lat.append((now - int(sent)) * 1e-6)
            if n >= len(seen):
                seen.extend(bytes(n - len(seen) + 4096))
            if seen[n]:
                self.dups += 1
            else:
                seen[n] = 1
                self.distinct += 1
            if n < self.max_n:
                self.out_of_order += 1
            else:
                self.max_n = n
        sink.delivered += count

    def _dechunk(self, data: bytes) -> None:
        buf = self.raw
        buf += data
        pos = 0
        size = len(buf)
        out = self.body
        while pos < size:
            if self.chunk_left:
                take = min(self.chunk_left, size - pos)
                out += buf[pos : pos + take]
                pos += take
                self.chunk_left -= take
                if not self.chunk_left:
                    self.crlf_left = 2
            elif self.crlf_left:
                skip = min(self.crlf_left, size - pos)
                pos += skip
                self.crlf_left -= skip
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                length = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                pos = eol + 2
                if length == 0:
                    pos = size
                    break
                self.chunk_left = length
        del buf[:pos]

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


def get_request(path: str, host: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        f"Cache-Control: no-cache\r\n\r\n"
    ).encode()


async def open_subscribers(
    host: str,
    port: int,
    paths: Sequence[str],
    sink: Sink,
    pattern: re.Pattern[bytes],
    concurrency: int = 256,
    timeout: float = 30.0,  # noqa: ASYNC109
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[list[Subscriber], list[str], float]:
    """Open one stream per path, ``concurrency`` handshakes at a time.

    Returns the connected subscribers, the errors of the others, and the seconds from
    the first connect to the last stream confirmed."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    ok: list[Subscriber] = []
    errors: list[str] = []
    hostport = f"{host}:{port}"
    start = time.monotonic()
    last = start

    async def one(key: int, path: str) -> None:
        nonlocal last
        async with sem:
            fut: asyncio.Future[float] = loop.create_future()
            sub = Subscriber(key, get_request(path, hostport), sink, pattern, fut)
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: sub, host, port), timeout=timeout
                )
                at = await asyncio.wait_for(fut, timeout=timeout)
            except (OSError, TimeoutError, ConnectionError) as exc:
                errors.append(sub.error or repr(exc))
                sub.close()
                return
            last = max(last, at)
            ok.append(sub)

    tasks = [asyncio.create_task(one(i, p)) for i, p in enumerate(paths)]
    pending = set(tasks)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        if progress is not None:
            progress(len(ok), len(errors), len(paths))
    ok.sort(key=lambda s: s.key)
    return ok, errors, last - start
