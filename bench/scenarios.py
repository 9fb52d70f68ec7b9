"""The scenarios (a)-(e), each against one target stack (the product, a baseline, a peer)."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import redis.asyncio as aioredis

from bench.loadgen import (
    BUS_EVENT,
    CHAT_EVENT,
    HttpConn,
    Publisher,
    Sink,
    Subscriber,
    open_subscribers,
)
from bench.procs import (
    NOT_SERVICES,
    PRODUCT_TARGETS,
    SYSCALLS_COUNTED,
    CpuMeter,
    Stack,
    fd_count,
    rss_bytes,
)
from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings

HOST = "127.0.0.1"
#: In-flight handshakes, and publisher connections at most (the same for the naive
#: baseline, whose pool is raised but whose handshakes each take a connection).
CONNECT_CONCURRENCY = int(os.environ.get("BENCH_CONNECT_CONCURRENCY", "24"))
MAX_PUBLISHERS = 24

SCENARIOS = {
    "a": "1,000 subscribers on 1,000 session channels, 500 msg/s",
    "b": "fan-out: 1,000 subscribers of one channel, 20 msg/s",
    "c": "10,000 idle subscribers on 10,000 channels",
    "d": "rate ramp on 100 channels: max delivered ev/s with p99 <= 100 ms and 0 loss",
    "e": "product path: chatbot customer messages -> agents' workbench streams",
}


@dataclass
class Sizes:
    a_channels: int
    a_rate: float
    b_subs: int
    b_rate: float
    c_subs: int
    c_live_rate: float
    d_channels: int
    d_subs_per_channel: int
    d_steps: list[float]  # delivered events/s offered per step
    e_agents: int
    e_rate: float


FULL = Sizes(
    a_channels=1000,
    a_rate=500,
    b_subs=1000,
    b_rate=20,
    c_subs=10_000,
    c_live_rate=2500,
    d_channels=100,
    d_subs_per_channel=20,
    d_steps=[2000, 5000, 10_000, 15_000, 20_000, 30_000, 40_000, 60_000, 80_000],
    e_agents=50,
    e_rate=200,
)
#: ``--instructions``: the services run under callgrind, some 30-50x slower. Rates low
#: enough that each message is handled on its own, as in (a) at full speed, so that a
#: count per message compares between builds.
CALLGRIND = Sizes(
    a_channels=50,
    a_rate=20,
    b_subs=100,
    b_rate=5,
    c_subs=300,
    c_live_rate=100,
    d_channels=0,
    d_steps=[],
    d_subs_per_channel=0,
    e_agents=0,
    e_rate=0,
)
#: The scenarios ``--instructions`` runs (a ramp or the product path under callgrind
#: would measure callgrind).
CALLGRIND_SCENARIOS = ("a", "b", "c")
QUICK = Sizes(
    a_channels=100,
    a_rate=100,
    b_subs=100,
    b_rate=20,
    c_subs=500,
    c_live_rate=500,
    d_channels=20,
    d_subs_per_channel=5,
    d_steps=[500, 1000, 2000, 4000, 8000],
    e_agents=5,
    e_rate=25,
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: np.ndarray[Any, Any], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


def latency_summary(sink: Sink) -> dict[str, Any]:
    lat = np.frombuffer(sink.latency_ms, dtype=np.float32) if len(sink.latency_ms) else np.array([])
    return {
        "samples": int(lat.size),
        "p50_ms": pct(lat, 50),
        "p90_ms": pct(lat, 90),
        "p99_ms": pct(lat, 99),
        "p999_ms": pct(lat, 99.9),
        "max_ms": round(float(lat.max()), 3) if lat.size else None,
    }


def latency_quantiles(sink: Sink, points: int = 400) -> list[float]:
    """A compact CDF for the figure."""
    if not len(sink.latency_ms):
        return []
    lat = np.frombuffer(sink.latency_ms, dtype=np.float32)
    qs = np.linspace(0, 100, points)
    return [round(float(v), 4) for v in np.percentile(lat, qs)]


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


def delivery_stats(
    subs: Sequence[Subscriber],
    channel_of: Callable[[int], int],
    sent_ok: Sequence[int],
    base: dict[int, int] | None = None,
    base_sent: Sequence[int] | None = None,
) -> dict[str, Any]:
    expected = received = lost = dups = ooo = 0
    for s in subs:
        ch = channel_of(s.key)
        exp = sent_ok[ch] - (base_sent[ch] if base_sent else 0)
        got = s.distinct - (base[s.key] if base else 0)
        expected += exp
        received += got
        lost += max(0, exp - got)
        dups += s.dups
        ooo += s.out_of_order
    return {
        "expected": expected,
        "received_distinct": received,
        "lost": lost,
        "loss_pct": round(100.0 * lost / expected, 4) if expected else None,
        "duplicates": dups,
        "out_of_order": ooo,
    }


async def bus_steady(run: Run, channels: int, subs_per_channel: int, rate: float) -> None:
    """(a) and (b): subscribers on channels, a steady publish rate, latency and loss."""
    names = [f"bench-{run.scenario}-{i}" for i in range(channels)]
    await run.create_sessions(names)
    # Publisher connections first: a server that runs out of fds with the subscribers
    # must still be able to take the publishes (the naive design in (c)).
    pub = Publisher(
        HOST,
        run.port,
        run.service_token,
        [run.publish_path(n) for n in names],
        workers=min(channels, MAX_PUBLISHERS),
    )
    await pub.connect()
    rss0 = run.server_rss()
    paths = [run.session_path(n) for n in names for _ in range(subs_per_channel)]
    subs = await run.open(paths)
    run.result["server_rss_mb"] = round(run.server_rss() / 2**20, 1)
    run.result["rss_per_conn_kb"] = round((run.server_rss() - rss0) / max(len(subs), 1) / 1024, 2)
    await asyncio.sleep(0.5)
    run.sink.reset()
    meter = run.meter(counted=True)
    t0 = time.monotonic()
    await run.with_progress(pub.run(rate, run.duration), pub, "publishing")
    pub_seconds = time.monotonic() - t0
    cpu = meter.stop()
    syscalls = meter.server_syscalls()

    def channel_of(key: int) -> int:
        return key // subs_per_channel

    def expected() -> int:
        return sum(pub.sent_ok[channel_of(s.key)] for s in subs)

    await run.drain(subs, expected)
    # Counted with the subscribers open and after publishing (every kind of connection
    # a process makes is there by then).
    run.result["redis_connections"] = await run.redis_clients()
    run.result.update(
        offered_msgs_per_s=rate,
        offered_events_per_s=rate * subs_per_channel,
        **_steady_result(run, pub, cpu, pub_seconds, subs, channel_of),
    )
    if run.stack.target in SYSCALLS_COUNTED:
        # Reads + writes per published message: what (a)'s CPU mostly is, and unmoved
        # by the machine's load, so two builds compare even on a busy machine.
        run.result["server_syscalls_per_msg"] = round(syscalls / max(pub.sent, 1), 2)
    if meter.instructions_counted is not None:
        run.result["server_instructions_per_msg"] = round(
            meter.instructions_counted / max(pub.sent, 1)
        )
    run.result["latency_cdf"] = latency_quantiles(run.sink)
    pub.close()
    await run.close(subs)


def server_cpu(cpu: dict[str, float]) -> float:
    """The services' CPU share: all measured processes but the generator, Redis, others."""
    return round(sum(v for k, v in cpu.items() if k not in NOT_SERVICES), 1)


def _steady_result(
    run: Run,
    pub: Publisher,
    cpu: dict[str, float],
    seconds: float,
    subs: Sequence[Subscriber],
    channel_of: Callable[[int], int],
) -> dict[str, Any]:
    """What a steady-rate scenario reports: publishing, delivery, CPU, latency, loss."""
    return {
        "published": pub.sent,
        "publish_errors": pub.errors,
        "publish_error_samples": pub.error_samples,
        "published_per_s": round(pub.sent / seconds, 1),
        "delivered_events_per_s": round(run.sink.delivered / seconds, 1),
        "cpu_pct": cpu,
        "server_cpu_pct": server_cpu(cpu),
        "generator_cpu_pct": round(cpu["generator"], 1),
        "others_cpu_pct": cpu["others"],
        **latency_summary(run.sink),
        **delivery_stats(subs, channel_of, pub.sent_ok),
    }


async def scenario_a(run: Run) -> None:
    await bus_steady(run, run.sizes.a_channels, 1, run.sizes.a_rate)


async def scenario_b(run: Run) -> None:
    await bus_steady(run, 1, run.sizes.b_subs, run.sizes.b_rate)


async def scenario_c(run: Run) -> None:
    n = run.sizes.c_subs
    names = [f"bench-c-{i}" for i in range(n)]
    await run.create_sessions(names)
    pid = run.stack.main.pid
    # Publisher connections first, as in (a): the naive server runs out of fds.
    pub = Publisher(
        HOST,
        run.port,
        run.service_token,
        [run.publish_path(x) for x in names],
        workers=MAX_PUBLISHERS,
    )
    await pub.connect()
    rss0 = run.server_rss()
    fds0 = fd_count(pid)
    opening = run.meter(counted=True)
    subs = await run.open([run.session_path(x) for x in names])
    run.result["open_server_cpu_pct"] = server_cpu(opening.stop())
    if run.stack.target in SYSCALLS_COUNTED:
        run.result["open_server_syscalls_per_conn"] = round(
            opening.server_syscalls() / max(len(subs), 1), 2
        )
    if opening.instructions_counted is not None:
        run.result["open_server_instructions_per_conn"] = round(
            opening.instructions_counted / max(len(subs), 1)
        )
    rss1 = run.server_rss()
    run.result.update(
        server_fds=fd_count(pid) - fds0,
        server_rss_before_mb=round(rss0 / 2**20, 1),
        server_rss_mb=round(rss1 / 2**20, 1),
        rss_per_conn_kb=round((rss1 - rss0) / max(len(subs), 1) / 1024, 2),
    )
    # Idle: what do N quiet streams cost?
    meter = run.meter()
    await run.with_progress(asyncio.sleep(min(run.duration, 5.0)), None, "idle")
    idle = meter.stop()
    run.result["idle_server_cpu_pct"] = server_cpu(idle)
    # Liveness: one event per channel; a subscriber that receives it is live.
    run.sink.reset()
    meter = run.meter()
    await run.with_progress(
        pub.run(run.sizes.c_live_rate, n / run.sizes.c_live_rate * 3 + 5, limit_per_channel=1),
        pub,
        "liveness",
    )
    cpu = meter.stop()

    def channel_of(key: int) -> int:
        return key

    await run.drain(subs, lambda: sum(pub.sent_ok[s.key] for s in subs), timeout=5.0)
    run.result.update(
        redis_connections=await run.redis_clients(),  # the 10k streams open, after publishing
        live=sum(1 for s in subs if s.distinct > 0),
        still_open=sum(1 for s in subs if not s.closed),
        publish_errors=pub.errors,
        publish_error_samples=pub.error_samples,
        cpu_pct=cpu,
        generator_cpu_pct=round(cpu["generator"], 1),
        others_cpu_pct=cpu["others"],
        **latency_summary(run.sink),
        **delivery_stats(subs, channel_of, pub.sent_ok),
    )
    run.result["latency_cdf"] = latency_quantiles(run.sink)
    pub.close()
    await run.close(subs)


def _step_expected(
    subs: Sequence[Subscriber],
    pub: Publisher,
    channel_of: Callable[[int], int],
    base: dict[int, int],
    base_sent: Sequence[int],
) -> Callable[[], int]:
    """Total distinct events the subscribers should hold once a ramp step is delivered."""
    before = sum(base.values())

    def expected() -> int:
        return before + sum(
            pub.sent_ok[channel_of(s.key)] - base_sent[channel_of(s.key)] for s in subs
        )

    return expected


async def scenario_d(run: Run) -> None:
    sz = run.sizes
    names = [f"bench-d-{i}" for i in range(sz.d_channels)]
    await run.create_sessions(names)
    pub = Publisher(
        HOST,
        run.port,
        run.service_token,
        [run.publish_path(x) for x in names],
        workers=min(sz.d_channels, MAX_PUBLISHERS),
    )
    await pub.connect()
    per = sz.d_subs_per_channel
    subs = await run.open([run.session_path(x) for x in names for _ in range(per)])
    run.result["redis_connections"] = await run.redis_clients()
    await asyncio.sleep(0.5)
    step_seconds = max(1.0, run.duration / len(sz.d_steps))

    def channel_of(key: int) -> int:
        return key // per

    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    all_lat = Sink()
    for offered in sz.d_steps:
        base = {s.key: s.distinct for s in subs}
        base_sent = list(pub.sent_ok)
        sent0, err0 = pub.sent, pub.errors
        run.sink.reset()
        meter = run.meter()
        t0 = time.monotonic()
        await run.with_progress(
            pub.run(offered / per, step_seconds), pub, f"step {offered:>6.0f} ev/s"
        )
        seconds = time.monotonic() - t0
        delivered_in_window = run.sink.delivered
        cpu = meter.stop()
        await run.drain(subs, _step_expected(subs, pub, channel_of, base, base_sent), timeout=2.0)
        stats = delivery_stats(subs, channel_of, pub.sent_ok, base, base_sent)
        step = {
            "offered_events_per_s": offered,
            "published_per_s": round((pub.sent - sent0) / seconds, 1),
            "delivered_events_per_s": round(delivered_in_window / seconds, 1),
            "publish_errors": pub.errors - err0,
            "server_cpu_pct": server_cpu(cpu),
            "redis_cpu_pct": round(cpu.get("redis", math.nan), 1),
            "generator_cpu_pct": round(cpu["generator"], 1),
            "others_cpu_pct": cpu["others"],
            **latency_summary(run.sink),
            **stats,
        }
        step["ok"] = bool(
            step["p99_ms"] is not None
            and step["p99_ms"] <= 100
            and stats["lost"] == 0
            and step["publish_errors"] == 0
            and step["published_per_s"] >= 0.9 * offered / per
        )
        steps.append(step)
        log(
            f"    [{run.stack.target} d] step {offered:.0f}: delivered "
            f"{step['delivered_events_per_s']:.0f}/s p99 {step['p99_ms']} ms lost {stats['lost']} "
            f"published {step['published_per_s']:.0f}/s of {offered / per:.0f} -> "
            f"{'ok' if step['ok'] else 'FAIL'}"
        )
        all_lat.latency_ms.extend(run.sink.latency_ms)
        if step["ok"]:
            best = step
        else:
            break
    run.result.update(
        steps=steps,
        max_ok_delivered_events_per_s=best["delivered_events_per_s"] if best else 0,
        p99_ms=best["p99_ms"] if best else None,
        p50_ms=best["p50_ms"] if best else None,
        server_cpu_pct=best["server_cpu_pct"] if best else None,
        generator_cpu_pct=max(s["generator_cpu_pct"] for s in steps),
        duplicates=sum(s.dups for s in subs),
        out_of_order=sum(s.out_of_order for s in subs),
    )
    run.sink = all_lat
    run.result["latency_cdf"] = latency_quantiles(all_lat)
    pub.close()
    await run.close(subs)


async def scenario_e(run: Run) -> None:
    """Customer messages through the chatbot reach the agents' streams on the workbench."""
    if not run.product:
        run.result["skipped"] = "only the product has this path"
        return
    chat = run.stack.services["chatbot"]
    bench = run.stack.services["workbench"]
    n = run.sizes.e_agents
    agents = [f"bench-agent-{i}" for i in range(n)]
    agent_tokens = [issue_token(run.settings, Role.AGENT, a) for a in agents]
    conn_c = await HttpConn(HOST, chat.port).connect()
    conn_w = await HttpConn(HOST, bench.port).connect()
    names: list[str] = []
    customer_tokens: list[str] = []
    for i in range(n):
        status, body = await conn_c.post(
            "/api/sessions", orjson.dumps({"session_name": f"bench-e-{i}"})
        )
        assert status == 201, (status, body)
        names.append(f"bench-e-{i}")
        customer_tokens.append(orjson.loads(body)["token"])
    subs = await run.open(
        [f"/api/agents/{a}/events?token={t}" for a, t in zip(agents, agent_tokens, strict=True)],
        port=bench.port,
        pattern=CHAT_EVENT,
    )
    for name, ctok, agent, atok in zip(names, customer_tokens, agents, agent_tokens, strict=True):
        status, body = await conn_c.post(
            "/api/manual/escalate", orjson.dumps({"session_name": name}), ctok
        )
        assert status == 200, (status, body)
        status, body = await conn_w.post(
            f"/api/sessions/{name}/takeover", orjson.dumps({"agent_id": agent}), atok
        )
        assert status == 200, (status, body)
    conn_c.close()
    conn_w.close()
    run.result["redis_connections"] = await run.redis_clients()
    pub = Publisher(
        HOST,
        chat.port,
        "",
        [f"/api/sessions/{x}/messages" for x in names],
        workers=min(n, MAX_PUBLISHERS),
        tokens=customer_tokens,
        body=lambda t, k: b'{"content":"bench %d %d"}' % (t, k),
    )
    await pub.connect()
    await asyncio.sleep(0.5)
    run.sink.reset()
    meter = run.meter()
    t0 = time.monotonic()
    await run.with_progress(pub.run(run.sizes.e_rate, run.duration), pub, "messages")
    seconds = time.monotonic() - t0
    cpu = meter.stop()

    def channel_of(key: int) -> int:
        return key

    await run.drain(subs, lambda: sum(pub.sent_ok[s.key] for s in subs))
    run.result.update(
        offered_msgs_per_s=run.sizes.e_rate,
        **_steady_result(run, pub, cpu, seconds, subs, channel_of),
    )
    run.result["latency_cdf"] = latency_quantiles(run.sink)
    pub.close()
    await run.close(subs)


RUNNERS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "a": scenario_a,
    "b": scenario_b,
    "c": scenario_c,
    "d": scenario_d,
    "e": scenario_e,
}
