"""Scenario (d): a rate ramp on a few channels, up to the last step delivered with p99
<= 100 ms and nothing lost."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.loadgen import Sink, Subscriber
from bench.publisher import Publisher
from bench.run import HOST, MAX_PUBLISHERS, Run, log
from bench.stats import delivery_stats, latency_quantiles, latency_summary, server_cpu


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
