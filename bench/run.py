"""One scenario against one target: the stack, the tokens, the meters, opening streams,
the progress lines while it runs, waiting for the last deliveries."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from bench.loadgen import BUS_EVENT, Sink, Subscriber, open_subscribers
from bench.meters import CpuMeter, rss_bytes
from bench.procs import PRODUCT_TARGETS, Stack
from bench.publisher import Publisher
from bench.sizes import Sizes
from bench.stats import server_cpu
from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings

HOST = "127.0.0.1"
#: In-flight handshakes, and publisher connections at most (the same for the naive
#: baseline, whose pool is raised but whose handshakes each take a connection).
CONNECT_CONCURRENCY = int(os.environ.get("BENCH_CONNECT_CONCURRENCY", "24"))
MAX_PUBLISHERS = 24


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Run:
    """One scenario against one target: the stack, the tokens, the meters."""

    def __init__(self, stack: Stack, scenario: str, sizes: Sizes, duration: float) -> None:
        self.stack = stack
        self.scenario = scenario
        self.sizes = sizes
        self.duration = duration
        self.settings = Settings(
            _env_file=None, AUTH_SECRET=stack.secret, REDIS_URL=stack.redis_url
        )
        self.service_token = issue_token(self.settings, Role.SERVICE, "bench")
        self.agent_token = issue_token(self.settings, Role.AGENT, "bench-agent")
        self.port = stack.main.port
        self.sink = Sink()
        self.redis: aioredis.Redis
        if stack.cluster is not None:
            from infrastructure.bus.redis.pool import make_cluster_client

            self.redis = make_cluster_client(self.settings, "bench")
        else:
            self.redis = aioredis.Redis.from_url(
                stack.redis_url, client_name="bench", max_connections=2000
            )
        self.result: dict[str, Any] = {"scenario": scenario, "target": stack.target}

    @property
    def product(self) -> bool:
        return self.stack.target in PRODUCT_TARGETS

    async def redis_clients(self) -> int:
        """Connections the services hold; by name (``<service>:<role>``) in the result (a
        cluster: summed over its primaries)."""
        listed: list[Any] = []
        if self.stack.cluster is not None:
            for node in self.stack.cluster.nodes:
                client = aioredis.Redis(host=HOST, port=node.port, client_name="bench")
                listed += await client.client_list()
                await client.aclose()
        else:
            listed = await self.redis.client_list()
        clients = [c for c in listed if c.get("name") != "bench"]
        by_name = Counter(c.get("name") or "(unnamed)" for c in clients)
        self.result["redis_connections_by_name"] = dict(sorted(by_name.items()))
        return len(clients)

    async def create_sessions(self, names: Sequence[str]) -> None:
        """Sessions must exist for the product's session stream (404 otherwise)."""
        if not self.product:
            return
        from infrastructure.sessions.redis_store import RedisSessionStore

        store = RedisSessionStore(self.redis, self.settings)
        for i in range(0, len(names), 500):
            await asyncio.gather(*(store.create(n) for n in names[i : i + 500]))

    def session_path(self, name: str) -> str:
        return f"/api/sessions/{name}/events?token={self.agent_token}"

    def publish_path(self, name: str) -> str:
        return f"/api/events/session/{name}?type=bench"

    async def open(
        self, paths: Sequence[str], port: int | None = None, pattern: Any = BUS_EVENT
    ) -> list[Subscriber]:
        t0 = time.monotonic()

        def progress(ok: int, err: int, total: int) -> None:
            log(
                f"    [{self.stack.target} {self.scenario}] opening {ok}/{total} "
                f"({err} failed) {time.monotonic() - t0:.1f}s"
            )

        subs, errors, seconds = await open_subscribers(
            HOST,
            port or self.port,
            paths,
            self.sink,
            pattern,
            concurrency=CONNECT_CONCURRENCY,
            progress=progress,
        )
        self.result.update(
            subscribers_requested=len(paths),
            subscribers_connected=len(subs),
            connect_errors=len(errors),
            connect_error_samples=sorted(set(errors))[:5],
            open_seconds=round(seconds, 3),
        )
        return subs

    def meter(self, counted: bool = False) -> CpuMeter:
        """A CPU meter, started; ``counted``: the one a result is read from, which also
        counts the services' instructions when they run under callgrind."""
        pids = dict(self.stack.pids())
        pids["generator"] = os.getpid()
        return CpuMeter(pids, self.stack.instructions if counted else None).start()

    async def with_progress(self, what: Awaitable[Any], pub: Publisher | None, label: str) -> Any:
        task = asyncio.ensure_future(what)
        meter = self.meter()
        t0 = time.monotonic()
        last = (t0, self.sink.delivered, pub.sent if pub else 0)
        while not task.done():
            await asyncio.wait({task}, timeout=1.0)
            now = time.monotonic()
            d = self.sink.delivered
            s = pub.sent if pub else 0
            dt = now - last[0]
            if dt < 0.5:
                continue
            cpu = meter.read()
            server = server_cpu(cpu)
            log(
                f"    [{self.stack.target} {self.scenario}] {label} {now - t0:5.1f}s "
                f"published {(s - last[2]) / dt:8.0f}/s delivered {(d - last[1]) / dt:9.0f}/s "
                f"server cpu {server:5.1f}% redis {cpu.get('redis', 0):5.1f}% "
                f"generator {cpu['generator']:5.1f}% others {cpu['others']:5.1f}%"
            )
            last = (now, d, s)
        return task.result()

    async def drain(
        self,
        subs: Sequence[Subscriber],
        expected: Callable[[], int],
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(s.distinct for s in subs) >= expected():
                return
            await asyncio.sleep(0.05)

    def server_rss(self) -> int:
        return sum(rss_bytes(svc.pid) for svc in self.stack.services.values())

    async def close(self, subs: Sequence[Subscriber]) -> None:
        for s in subs:
            s.close()
        await asyncio.sleep(0.2)
        await self.redis.aclose()
