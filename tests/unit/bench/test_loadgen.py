"""The load generator's stream reader counts every event once, however the bytes arrive.

A response read whole, chunk by chunk, or cut at any byte must give the same counts:
the generator takes a short way for reads that hold exactly one whole chunk, and the
general way (its buffers) for everything else, and the two must agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.loadgen import BUS_EVENT, Sink, Subscriber

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
SENT_AT = 1_000_000_000


def frame(n: int) -> bytes:
    payload = b'{"type":"bench","payload":{"t":%d,"n":%d}}' % (SENT_AT + n, n)
    return b"id: 1-%d\ndata: %s\n\n" % (n, payload)


def chunk(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


def sse_body(numbers: Sequence[int]) -> bytes:
    return b"retry: 1000\n: connected\n\n" + b"".join(frame(n) for n in numbers)


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """``data`` cut at ``points`` (taken modulo its length), in order, no empty piece."""
    bounds = sorted({0, len(data), *(p % len(data) for p in points)})
    return [data[a:b] for a, b in pairwise(bounds)]


def response(numbers: Sequence[int], chunk_cuts: Sequence[int] = ()) -> list[bytes]:
    """The head, then the SSE body as HTTP chunks: a chunk per event, or cut at
    ``chunk_cuts`` (anywhere, also inside an event)."""
    if chunk_cuts:
        bodies = cut(sse_body(numbers), chunk_cuts)
    else:
        bodies = [b"retry: 1000\n: connected\n\n", *(frame(n) for n in numbers)]
    return [HEAD, *(chunk(body) for body in bodies)]


def read(reads: Sequence[bytes]) -> Subscriber:
    loop = asyncio.new_event_loop()
    try:
        sub = Subscriber(0, b"", Sink(), BUS_EVENT, loop.create_future())
        for data in reads:
            if data:
                sub.data_received(data)
        assert sub.connected.done()
        return sub
    finally:
        loop.close()


def counts(sub: Subscriber) -> tuple[int, int, int, int, int]:
    return (sub.sink.delivered, sub.distinct, sub.dups, sub.out_of_order, sub.max_n)


def test_one_read_per_chunk_counts_every_event_and_its_latency() -> None:
    sub = read(response(range(50)))
    assert counts(sub) == (50, 50, 0, 0, 49)
    assert len(sub.sink.latency_ms) == 50


def test_duplicates_and_out_of_order_events_are_counted() -> None:
    sub = read(response([0, 1, 1, 3, 2]))
    assert counts(sub) == (5, 4, 1, 1, 3)


def test_a_final_chunk_ends_the_body_without_an_event() -> None:
    sub = read([*response(range(3)), b"0\r\n\r\n"])
    assert counts(sub) == (3, 3, 0, 0, 2)


@settings(max_examples=300, deadline=None)
@given(
    events=st.integers(min_value=1, max_value=30),
    chunk_cuts=st.lists(st.integers(min_value=0, max_value=5_000), max_size=20),
    read_cuts=st.lists(st.integers(min_value=0, max_value=5_000), max_size=40),
    reads_are_chunks=st.booleans(),
)
def test_any_cut_of_the_bytes_gives_the_counts_of_whole_reads(
    events: int, chunk_cuts: list[int], read_cuts: list[int], reads_are_chunks: bool
) -> None:
    parts = response(range(events), chunk_cuts)
    reads = parts if reads_are_chunks else cut(b"".join(parts), read_cuts)
    assert counts(read(reads)) == (events, events, 0, 0, events - 1)
