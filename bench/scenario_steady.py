"""Scenarios (a) and (b): subscribers on channels, a steady publish rate; what a
steady-rate scenario reports ((e) reports the same)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.loadgen import Subscriber
from bench.procs import SYSCALLS_COUNTED
from bench.publisher import Publisher
from bench.run import HOST, MAX_PUBLISHERS, Run
from bench.stats import delivery_stats, latency_quantiles, latency_summary, server_cpu


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
        **steady_result(run, pub, cpu, pub_seconds, subs, channel_of),
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


def steady_result(
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
