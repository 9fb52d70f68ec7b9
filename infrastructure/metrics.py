"""Prometheus metrics of one process, read from the bus when scraped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infrastructure.bus.api import SseBus

if TYPE_CHECKING:
    from infrastructure.bus.redis.cluster import ClusterNodes
    from infrastructure.bus.redis.manager import RedisSseManager
    from infrastructure.bus.redis.topology import TopologyWatch

BUS_MODES = ("redis", "redis-degraded", "memory")


class BusCollector(Collector):
    def __init__(
        self,
        get_bus: Callable[[], SseBus],
        service: str,
        fast_outcomes: Mapping[str, int] | None = None,
    ) -> None:
        self._get_bus = get_bus
        self._service = service
        self._fast_outcomes = fast_outcomes or {}

    def collect(self) -> Iterator[Metric]:
        bus = self._get_bus()
        stats = bus.stats
        labels = ["service"]
        streams = GaugeMetricFamily("sse_open_streams", "Open SSE responses.", labels=labels)
        streams.add_metric([self._service], stats.open_streams)
        yield streams

        listeners = GaugeMetricFamily(
            "sse_listeners", "Listeners attached to the local hub.", labels=labels
        )
        listeners.add_metric([self._service], bus.hub.count())
        yield listeners

        published = CounterMetricFamily(
            "sse_events_published", "Events published, by type.", labels=[*labels, "type"]
        )
        for kind, count in sorted(stats.published.items()):
            published.add_metric([self._service, kind], count)
        yield published

        delivered = CounterMetricFamily(
            "sse_events_delivered",
            "Events written to SSE clients, by type.",
            labels=[*labels, "type"],
        )
        for kind, count in sorted(stats.delivered.items()):
            delivered.add_metric([self._service, kind], count)
        yield delivered

        dropped = CounterMetricFamily(
            "sse_listeners_dropped",
            "Listeners disconnected for falling SSE_QUEUE_MAXSIZE events behind.",
            labels=[*labels, "reason"],
        )
        dropped.add_metric([self._service, "slow"], bus.hub.dropped_slow)
        yield dropped

        mode = GaugeMetricFamily(
            "sse_bus_mode", "1 for the bus mode in use.", labels=[*labels, "mode"]
        )
        current = bus.mode
        for name in BUS_MODES:
            mode.add_metric([self._service, name], 1 if name == current else 0)
        yield mode

        manager = bus.manager
        reconnects = CounterMetricFamily(
            "redis_reconnects", "Reconnections of the Redis subscriber.", labels=labels
        )
        reconnects.add_metric([self._service], manager.reconnects if manager else 0)
        yield reconnects

        yield from _topology_metrics(manager, self._service)

        outbox = GaugeMetricFamily(
            "sse_outbox_size", "Events waiting for Redis to come back.", labels=labels
        )
        outbox.add_metric([self._service], manager.outbox_size() if manager else 0)
        yield outbox

        overflow = CounterMetricFamily(
            "sse_outbox_overflow",
            "Events dropped from a full outbox (SSE_OUTBOX_MAXSIZE).",
            labels=labels,
        )
        overflow.add_metric([self._service], manager.outbox_overflow if manager else 0)
        yield overflow

        fast = CounterMetricFamily(
            "http_fast_path_requests",
            "Stream and publish requests the fast path served, or handed to FastAPI "
            "(declined: refused requests, CORS, anything unusual).",
            labels=[*labels, "outcome"],
        )
        for outcome, count in sorted(self._fast_outcomes.items()):
            fast.add_metric([self._service, outcome], count)
        yield fast


def _topology_metrics(manager: RedisSseManager | None, service: str) -> Iterator[Metric]:
    """Where the bus's Redis is, and what following it took (issue 24)."""
    labels = ["service"]
    counters = (
        ("redis_failovers", "Switches of the bus to another primary."),
        ("redis_resubscribes", "Times the bus subscribed every channel again."),
        ("redis_catch_ups", "Catch-ups of every followed channel from its Stream."),
        ("redis_delivery_stalls", "Probes of the subscription that did not come back."),
        ("sse_publishes_not_replicated", "Publishes kept back for lack of replica acks."),
    )
    if manager is not None:
        watch = manager.topology
        values = (
            watch.failovers,
            manager.resubscribes,
            manager.catch_ups,
            watch.stalls,
            manager.not_replicated,
        )
    else:
        values = (0, 0, 0, 0, 0)
    for (name, text), value in zip(counters, values, strict=True):
        family = CounterMetricFamily(name, text, labels=labels)
        family.add_metric([service], value)
        yield family
    if manager is None:
        return
    if manager.cluster is not None:
        yield from _cluster_metrics(manager.cluster, service)
        return
    watch = cast("TopologyWatch", manager.topology)  # one server, or Sentinel
    primary = GaugeMetricFamily(
        "redis_primary", "1 for the primary the bus is on.", labels=[*labels, "address"]
    )
    primary.add_metric([service, watch.address or ""], 1)
    yield primary
    replicas = GaugeMetricFamily(
        "redis_primary_replicas", "Replicas the primary had at the last check.", labels=labels
    )
    replicas.add_metric([service], watch.replicas)
    yield replicas
    age = GaugeMetricFamily(
        "sse_seconds_since_delivery",
        "Seconds since the bus's subscription last delivered (its probe came back).",
        labels=labels,
    )
    age.add_metric([service], time.monotonic() - watch.last_delivery)
    yield age


def _cluster_metrics(cluster: ClusterNodes, service: str) -> Iterator[Metric]:
    """A Redis Cluster: one sample per primary (its address) where one server has one."""
    labels = ["service", "address"]
    primary = GaugeMetricFamily("redis_primary", "1 for each primary the bus is on.", labels=labels)
    replicas = GaugeMetricFamily(
        "redis_shard_replicas", "Replicas of each primary at the last map read.", labels=labels
    )
    up = GaugeMetricFamily(
        "redis_bus_connection_up", "1 while the bus's subscriber on a primary is up.", labels=labels
    )
    for shard in cluster.shards:
        node = cluster.nodes.get(shard.primary)
        connected = node is not None and node.subscriber is not None and node.subscriber.connected
        primary.add_metric([service, shard.primary], 1)
        replicas.add_metric([service, shard.primary], len(shard.replicas))
        up.add_metric([service, shard.primary], 1 if connected else 0)
    age = GaugeMetricFamily(
        "sse_seconds_since_delivery",
        "Seconds since each bus connection's subscription last delivered (its probe came back).",
        labels=labels,
    )
    now = time.monotonic()
    for address, node in cluster.nodes.items():
        age.add_metric([service, address], now - node.last_delivery)
    changes = CounterMetricFamily(
        "redis_slot_map_changes", "Changes of the Redis Cluster slot map seen.", labels=["service"]
    )
    changes.add_metric([service], cluster.map_changes)
    yield from (primary, replicas, up, age, changes)


def build_registry(
    get_bus: Callable[[], SseBus], service: str, fast_outcomes: Mapping[str, int] | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusCollector(get_bus, service, fast_outcomes))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
