"""Scenario (c): many idle streams: what opening them costs, what they cost idle, and
whether each is still live."""

from __future__ import annotations

import asyncio

from bench.meters import fd_count
from bench.procs import SYSCALLS_COUNTED
from bench.publisher import Publisher
from bench.run import HOST, MAX_PUBLISHERS, Run
from bench.stats import delivery_stats, latency_quantiles, latency_summary, server_cpu


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
