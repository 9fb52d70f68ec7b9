"""The load generator's hot path: raw HTTP/1.1 over asyncio protocols.

Subscribers are :class:`asyncio.Protocol` objects that decode the chunked SSE body
and pull ``(t, n)`` out of each event with one regular expression: no HTTP client
library, no JSON decoding, one ``time.time_ns()`` per TCP read. Publishers keep one
keep-alive connection each and never have two requests for the same channel in
flight, so the order a subscriber sees is the order the events were published in.
"""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


class _Response(asyncio.Protocol):
    """One keep-alive connection: write a request, read one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(repr(exc)))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        i = head.find(b"content-length:")
        length = 0
        if i >= 0:
            j = head.find(b"\r\n", i)
            length = int(head[i + 15 : j if j > 0 else len(head)])
        if len(buf) < end + 4 + length:
            return
        body = bytes(buf[end + 4 : end + 4 + length])
        del buf[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((int(head[9:12]), body))

    async def request(self, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:  # noqa: ASYNC109
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await asyncio.wait_for(self.waiter, timeout)


class HttpConn:
    """A tiny raw HTTP/1.1 client for the publish path and setup calls."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.proto: _Response | None = None

    async def connect(self) -> HttpConn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Response, self.host, self.port)
        self.proto = proto
        return self

    async def post(
        self,
        path: str,
        body: bytes,
        token: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> tuple[int, bytes]:
        if self.proto is None or self.proto.lost:
            await self.connect()
        assert self.proto is not None
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        return await self.proto.request(head + body, timeout)

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()


@dataclass
class ChannelPlan:
    """What one publisher worker sends: ``(path, key)`` pairs, round robin."""

    targets: list[tuple[str, int]]
    ok: dict[int, int] = field(default_factory=dict)


class Publisher:
    """Open-loop paced publishing over ``workers`` keep-alive connections.

    Channel ``k`` always goes through worker ``k % workers`` and each worker waits for
    a response before its next request: per channel, events arrive at the server in
    sequence order. ``n`` counts per channel from 0; ``sent_ok[k]`` is how many were
    accepted (2xx) on channel k, which is what every subscriber of k should receive.
    """

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        paths: Sequence[str],
        workers: int,
        body: Callable[[int, int], bytes] | None = None,
        tokens: Sequence[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.tokens = tokens
        self.paths = list(paths)
        self.workers = max(1, min(workers, len(self.paths)))
        self.body = body or (lambda t, n: b'{"t":%d,"n":%d}' % (t, n))
        self.seq = [0] * len(self.paths)
        self.sent_ok = [0] * len(self.paths)
        self.sent = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.conns: list[HttpConn] = []

    async def connect(self) -> None:
        self.conns = [await HttpConn(self.host, self.port).connect() for _ in range(self.workers)]

    async def run(self, rate: float, duration: float, limit_per_channel: int | None = None) -> None:
        """Publish ``rate`` events/s in total for ``duration`` seconds."""
        if rate <= 0 or duration <= 0:
            return
        await asyncio.gather(
            *(self._worker(w, rate, duration, limit_per_channel) for w in range(self.workers))
        )

    async def _worker(
        self, w: int, rate: float, duration: float, limit_per_channel: int | None
    ) -> None:
        own = list(range(w, len(self.paths), self.workers))
        if not own:
            return
        interval = self.workers / rate
        loop = asyncio.get_running_loop()
        # Spread the workers' phases so that they do not all fire on the same tick.
        start = loop.time() + interval * w / self.workers
        deadline = loop.time() + duration
        next_at = start
        conn = self.conns[w]
        i = 0
        while True:
            now = loop.time()
            if now >= deadline:
                return
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at += interval
            k = own[i % len(own)]
            i += 1
            if limit_per_channel is not None and self.seq[k] >= limit_per_channel:
                if all(self.seq[c] >= limit_per_channel for c in own):
                    return
                continue
            n = self.seq[k]
            self.seq[k] = n + 1
            token = self.tokens[k] if self.tokens is not None else self.token
            try:
                status, body = await conn.post(self.paths[k], self.body(time.time_ns(), n), token)
            except (OSError, TimeoutError, ConnectionError) as exc:
                status, body = 0, repr(exc).encode()
            self.sent += 1
            if 200 <= status < 300:
                self.sent_ok[k] += 1
            else:
                self.errors += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(f"{status} {body[:200]!r}")

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
