"""The delivery queue on a real redis-server, with a real HTTP receiver: order per session,
exactly once, signatures that verify, and nothing lost when a worker stops or dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from infrastructure.config import Settings
from infrastructure.webhooks.emit import WebhookOutbox
from infrastructure.webhooks.queue import WebhookQueue
from infrastructure.webhooks.worker import DeliveryWorker
from tests.support.processes import async_wait_until
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "s3cret-for-the-tests-0123"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().up()
    yield hook
    hook.down()


@pytest.fixture
def make_settings(redis_url: str, receiver: WebhookReceiver) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "REDIS_URL": redis_url,
            "WEBHOOKS": [
                {
                    "url": receiver.url,
                    "secret": SECRET,
                    "events": ["message", "closed"],
                    "id": "crm",
                }
            ],
            "WEBHOOK_TIMEOUT_SECONDS": 0.5,
            "WEBHOOK_BACKOFF_MIN_SECONDS": 0.05,
            "WEBHOOK_BACKOFF_MAX_SECONDS": 0.2,
            "WEBHOOK_CLAIM_IDLE_SECONDS": 1.5,
            **overrides,
        }
        return Settings(_env_file=None, **values)

    return build


@asynccontextmanager
async def running_worker(settings: Settings, name: str) -> AsyncIterator[DeliveryWorker]:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    async with httpx.AsyncClient(timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as http:
        worker = DeliveryWorker(WebhookQueue(client, settings), settings, http, name)
        worker.start()
        try:
            yield worker
        finally:
            await worker.stop()
            await client.aclose()


@asynccontextmanager
async def outbox(settings: Settings) -> AsyncIterator[WebhookOutbox]:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        yield WebhookOutbox(WebhookQueue(client, settings), list(settings.WEBHOOKS))
    finally:
        await client.aclose()


async def produce(box: WebhookOutbox, sessions: list[str], per_session: int) -> None:
    """Events interleaved across sessions: s0#0, s1#0, s0#1, s1#1, ..."""
    for n in range(per_session):
        for name in sessions:
            await box.enqueue("message", name, {"n": n, "content": f"{name} #{n}"})


def check_all_once_in_order(
    receiver: WebhookReceiver, sessions: list[str], per_session: int
) -> None:
    got = receiver.snapshot()
    ids = [r.json["id"] for r in got]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    for r in got:
        r.verify(SECRET)
        assert r.headers["x-cs-event-id"] == r.json["id"]
    for name in sessions:
        seen = [r.json["data"]["n"] for r in got if r.json["session_name"] == name]
        assert seen == list(range(per_session)), f"{name}: {seen}"


def count_is(receiver: WebhookReceiver, n: int) -> Callable[[], bool]:
    return lambda: len(receiver.snapshot()) >= n


def backlog_empty(worker: DeliveryWorker) -> Callable[[], Any]:
    async def empty() -> bool:
        return await worker.queue.backlog() == 0

    return empty


async def test_delivered_signed_once_in_order(
    make_settings: Callable[..., Settings], receiver: WebhookReceiver
) -> None:
    settings = make_settings()
    sessions = ["a", "b", "c"]
    async with outbox(settings) as box, running_worker(settings, "w1") as worker:
        await produce(box, sessions, 5)
        await box.enqueue("escalated", "a", {})  # no hook wants it: nothing queued
        await async_wait_until(count_is(receiver, 15), timeout=15, description="15 deliveries")
        await async_wait_until(backlog_empty(worker), timeout=5, description="all acknowledged")
        log = await worker.queue.log("crm")
        assert log["delivered"] == "15"
        assert log["last_status"] == "204"
    check_all_once_in_order(receiver, sessions, 5)
    assert {r.json["type"] for r in receiver.snapshot()} == {"message"}


async def test_a_failing_receiver_holds_back_later_events_of_the_session(
    make_settings: Callable[..., Settings], receiver: WebhookReceiver
) -> None:
    settings = make_settings()
    receiver.failing = 503
    async with outbox(settings) as box, running_worker(settings, "w1") as worker:
        await produce(box, ["a", "b"], 4)

        # Every first event fails again and again; none of the later ones may pass it.
        # (The receiver counts a refusal before the worker has read its answer: wait for
        # the worker's own account of six failures, counted and logged.)
        async def six_failures_logged() -> bool:
            log = await worker.queue.log("crm")
            return (
                worker.stats.outcomes[("crm", "failed")] >= 6
                and int(log.get("consecutive_failures", 0)) >= 6
            )

        await async_wait_until(six_failures_logged, timeout=10, description="retries")
        assert receiver.refused >= 6
        assert receiver.snapshot() == []
        log = await worker.queue.log("crm")
        assert log["last_status"] == "503"
        receiver.failing = None
        await async_wait_until(count_is(receiver, 8), timeout=15, description="8 deliveries")
    check_all_once_in_order(receiver, ["a", "b"], 4)


async def test_the_queue_survives_a_worker_restart(
    make_settings: Callable[..., Settings], receiver: WebhookReceiver
) -> None:
    settings = make_settings()
    receiver.down()
    async with outbox(settings) as box:
        async with running_worker(settings, "replica-1") as first:
            await produce(box, ["a", "b"], 3)
            await async_wait_until(
                lambda: first.stats.outcomes[("crm", "failed")] >= 2,
                timeout=10,
                description="the first worker failing against a receiver that is down",
            )
        # Stopped with everything pending in it; more events come meanwhile.
        await produce(box, ["c"], 3)
        receiver.up()
        # A restarted replica is a new consumer: it claims the old one's entries once they
        # have been idle WEBHOOK_CLAIM_IDLE_SECONDS.
        async with running_worker(settings, "replica-1-restarted") as second:
            await async_wait_until(count_is(receiver, 9), timeout=20, description="9 deliveries")
            assert second.stats.claimed >= 1
            await async_wait_until(backlog_empty(second), timeout=5, description="all acked")
    check_all_once_in_order(receiver, ["a", "b", "c"], 3)


async def test_a_live_consumer_keeps_its_entries_a_dead_ones_are_claimed(
    make_settings: Callable[..., Settings], receiver: WebhookReceiver
) -> None:
    settings = make_settings()
    receiver.failing = 500
    async with outbox(settings) as box, running_worker(settings, "alive") as alive:
        async with running_worker(settings, "doomed") as doomed:
            await produce(box, ["a", "b", "c", "d"], 3)
            await async_wait_until(
                lambda: doomed.held and alive.held, timeout=10, description="both hold some"
            )
            # Longer than WEBHOOK_CLAIM_IDLE_SECONDS with both alive: nothing changes hands
            # (each keeps refreshing what it holds), and the session order holds across them.
            await async_wait_until(
                lambda: receiver.refused >= 60, timeout=20, description="a few seconds of failures"
            )
            assert alive.stats.claimed == 0
            assert doomed.stats.claimed == 0
        # "doomed" is gone (its task cancelled: no more refreshes) with entries pending.
        receiver.failing = None
        await async_wait_until(count_is(receiver, 12), timeout=20, description="12 deliveries")
        assert alive.stats.claimed >= 1
    check_all_once_in_order(receiver, ["a", "b", "c", "d"], 3)


async def test_a_busy_worker_stops_at_once(
    make_settings: Callable[..., Settings], receiver: WebhookReceiver
) -> None:
    """Stopped in the middle of its work (a blocking read, deliveries on their way), the
    worker ends: a replica's shutdown is never held up by it."""
    settings = make_settings()
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    async with outbox(settings) as box, httpx.AsyncClient(timeout=1) as http:
        worker = DeliveryWorker(WebhookQueue(client, settings), settings, http, "busy")
        worker.start()
        await produce(box, ["a", "b"], 3)
        await asyncio.wait_for(worker.stop(), timeout=5)
    await client.aclose()
    # What it had not finished waits in the queue for the next consumer (a delivery
    # received but not yet acknowledged too: at least once).
    async with outbox(settings) as box:
        assert 6 - len(receiver.snapshot()) <= await box.queue.backlog() <= 6
