"""Outgoing webhooks: signed deliveries of the desk's events from a durable queue in Redis.

``models`` (what ``WEBHOOKS`` holds), ``signing`` (the ``X-CS-Signature`` header and how a
receiver checks it), ``schedule`` (backoff and the ordering rule), ``queue`` (the Redis
Stream, its consumer group and the delivery log), ``worker`` (the consumer each workbench
replica runs), ``emit`` (what the use cases call).
"""
