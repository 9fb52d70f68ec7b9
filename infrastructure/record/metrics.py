"""The record's Prometheus metrics: the archiver's progress, backlog and lag."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .service import Record


class RecordCollector(Collector):
    def __init__(self, get_record: Callable[[], Record | None], service: str) -> None:
        self._get_record = get_record
        self._service = service

    def collect(self) -> Iterator[Metric]:
        record = self._get_record()
        if record is None:
            return
        labels = ["service"]
        ready = GaugeMetricFamily(
            "record_database_ready", "1 once the record's database is migrated.", labels=labels
        )
        ready.add_metric([self._service], 1 if record.migrated.is_set() else 0)
        yield ready
        archiver = record.archiver
        if archiver is None:
            return
        stats = archiver.stats
        gauges = {
            "record_archiver_running": ("1 while the archiver loop runs.", int(stats.running)),
            "record_backlog_entries": (
                "Record stream entries not yet in SQL (pending + never read).",
                stats.backlog,
            ),
            "record_lag_seconds": (
                "Age of the oldest record entry not yet in SQL (0: none).",
                max(0.0, time.time() - stats.oldest_pending_ms / 1000)
                if stats.oldest_pending_ms
                else 0.0,
            ),
            "record_last_commit_timestamp_seconds": (
                "When the archiver last committed a batch (epoch seconds).",
                (stats.last_commit_ms or 0) / 1000,
            ),
        }
        for name, (doc, value) in gauges.items():
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            gauge.add_metric([self._service], value)
            yield gauge
        counters = {
            "record_archived_entries": ("Entries committed to SQL.", stats.archived),
            "record_duplicate_entries": (
                "Entries read again that SQL had already (idempotent skips).",
                stats.duplicates,
            ),
            "record_claimed_entries": (
                "Pending entries claimed from dead consumers.",
                stats.claimed,
            ),
            "record_malformed_entries": (
                "Entries skipped as unusable or deleted.",
                stats.malformed,
            ),
            "record_archiver_errors": ("Failed archiver steps (retried).", stats.errors),
            "record_purged_conversations": ("Conversations purged by retention.", stats.purged),
            "record_purged_files": (
                "Attachment files deleted with the conversations retention purged.",
                stats.purged_files,
            ),
        }
        for name, (doc, value) in counters.items():
            counter = CounterMetricFamily(name, doc, labels=labels)
            counter.add_metric([self._service], value)
            yield counter
