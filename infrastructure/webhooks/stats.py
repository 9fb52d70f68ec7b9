"""What ``/metrics`` shows of the delivery worker: plain counters read at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class WebhookStats:
    def __init__(self) -> None:
        #: (hook id, outcome) -> attempts: delivered, failed (each failed attempt), gave_up.
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.backlog = 0
        self.claimed = 0
        self.queue_errors = 0

    def count(self, hook_id: str, outcome: str) -> None:
        self.outcomes[(hook_id, outcome)] += 1


class WebhookCollector(Collector):
    def __init__(self, stats: WebhookStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            "webhook_deliveries",
            "Webhook delivery attempts by this replica, by hook and outcome "
            "(delivered: 2xx; failed: anything else, retried; gave_up: retried too long).",
            labels=["hook", "outcome"],
        )
        for (hook, outcome), count in sorted(self.stats.outcomes.items()):
            attempts.add_metric([hook, outcome], count)
        yield attempts
        backlog = GaugeMetricFamily(
            "webhook_backlog", "Deliveries waiting in the queue (all replicas), last seen."
        )
        backlog.add_metric([], self.stats.backlog)
        yield backlog
        claimed = CounterMetricFamily(
            "webhook_claimed", "Deliveries taken over from a consumer that stopped answering."
        )
        claimed.add_metric([], self.stats.claimed)
        yield claimed
        errors = CounterMetricFamily(
            "webhook_queue_errors", "Rounds of the delivery worker that Redis failed."
        )
        errors.add_metric([], self.stats.queue_errors)
        yield errors
