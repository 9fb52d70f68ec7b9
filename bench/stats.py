"""What a result reports from what the subscribers and the meters counted: latency
quantiles, loss, duplicates and order, the services' CPU share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.loadgen import Sink, Subscriber
from bench.meters import NOT_SERVICES


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


def server_cpu(cpu: dict[str, float]) -> float:
    """The services' CPU share: all measured processes but the generator, Redis, others."""
    return round(sum(v for k, v in cpu.items() if k not in NOT_SERVICES), 1)
