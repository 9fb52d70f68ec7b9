"""What the desk's one slot can take: Redis CPU per desk script, read from Redis itself.

On a Redis Cluster every script of the desk (sessions, queue, presence, the record stream)
runs on the one primary that serves ``{desk}`` (README, "Redis Cluster"): that primary is the
cluster's limit. This starts a ``redis-server`` of its own, runs each kind of desk call many
times through the product's own store and desk (the same Lua, the same arguments) and reads
the server's CPU per call from ``INFO commandstats`` (``usec_per_call`` of ``EVALSHA``, reset
between phases), so the figure is Redis' time, not this process's::

    .venv/bin/python -m bench.desk_slot [--sessions 2000]

It prints, per kind of call, microseconds per call and how many such calls one core of Redis
serves per second; the capacity plan in the README uses them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

import redis.asyncio as aioredis

from infrastructure.config import Settings
from infrastructure.desk.redis_desk import RedisDesk
from infrastructure.sessions.models import ChatMessage, SenderRole
from infrastructure.sessions.redis_store import RedisSessionStore
from tests.support.redis_server import RedisServer

#: Calls in flight at once (as many replicas' requests would be).
CONCURRENCY = 32


@dataclass(frozen=True)
class Phase:
    name: str
    calls: int
    usec_per_call: float

    @property
    def per_second(self) -> float:
        return 1_000_000 / self.usec_per_call if self.usec_per_call else 0.0

    def line(self) -> str:
        return (
            f"| {self.name} | {self.calls:,} | {self.usec_per_call:.1f} | {self.per_second:,.0f} |"
        )


@contextlib.contextmanager
def _server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


async def _measure(
    redis: aioredis.Redis, name: str, calls: list[Callable[[], Awaitable[object]]]
) -> Phase:
    await redis.config_resetstat()
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            await call()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    stats = await redis.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {})
    return Phase(name, int(evalsha.get("calls", 0)), float(evalsha.get("usec_per_call", 0.0)))


async def run(sessions: int) -> list[Phase]:
    with _server() as server:
        settings = Settings(_env_file=None, REDIS_URL=server.url)
        redis = aioredis.Redis.from_url(server.url)
        try:
            store = RedisSessionStore(redis, settings)
            desk = RedisDesk(redis, settings, f"bench-{secrets.token_hex(3)}")
            names = [f"d{n}" for n in range(sessions)]
            for name in names:
                await store.create(name)

            def tick(chunk: list[str]) -> Callable[[], Awaitable[object]]:
                return lambda: desk.enter("customer", chunk)

            def message(name: str, n: int) -> Callable[[], Awaitable[object]]:
                return lambda: store.append_message(
                    ChatMessage(
                        session_name=name,
                        sender=SenderRole.CUSTOMER,
                        content=f"message {n}: where is my parcel?",
                    )
                )

            phases = [
                await _measure(
                    redis,
                    "append_message (every message)",
                    [message(name, n) for n in range(3) for name in names],
                ),
                await _measure(
                    redis,
                    "escalate (转人工: a move into the queue)",
                    [partial(store.escalate, name) for name in names],
                ),
                await _measure(
                    redis,
                    "presence tick, 100 streams per call",
                    [tick(names[i : i + 100]) for i in range(0, len(names), 100)] * 20,
                ),
                await _measure(
                    redis,
                    f"sweep ({sessions:,} waiting)",
                    [desk.sweep for _ in range(50)],
                ),
            ]
            return phases
        finally:
            await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=2000)
    args = parser.parse_args(argv)
    phases = asyncio.run(run(args.sessions))
    print("| desk call | calls | Redis µs per call | calls/s on one Redis core |")
    print("|---|---|---|---|")
    for phase in phases:
        print(phase.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
