"""The load generator's publishing side: raw HTTP/1.1 POSTs over keep-alive connections.

Publishers keep one keep-alive connection each and never have two requests for the same
channel in flight, so the order a subscriber sees is the order the events were published
in (the subscribing side is ``loadgen.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence


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
