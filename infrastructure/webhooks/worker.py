"""The delivery worker: one consumer of the queue's group per workbench replica.

Each round it reads new entries (``XREADGROUP``), now and then claims those a dead
consumer left pending (``XAUTOCLAIM`` after ``WEBHOOK_CLAIM_IDLE_SECONDS``) and keeps its
own from looking dead (their idle time reset while it holds them), asks Redis for the head
of each (hook, session) it holds, and sends what :func:`schedule.due` allows, concurrently
across sessions and hooks. A 2xx acknowledges and deletes the entry; anything else (or no
answer within ``WEBHOOK_TIMEOUT_SECONDS``) schedules the next attempt with exponential
backoff, until ``WEBHOOK_MAX_AGE_SECONDS`` after the event, when it is given up (logged,
counted) and the session's next event may go.

Delivery is at least once: a replica that dies after the receiver's 2xx but before the
acknowledgement has that entry sent again by another. Every delivery of one event carries the
same ``X-CS-Event-Id`` (and ``id`` in the body), by which a receiver drops a repeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from redis.exceptions import RedisError

from infrastructure.bus.redis.pool import make_redis_client
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings

from .models import WebhookConfig
from .queue import WebhookQueue
from .schedule import Delivery, backoff, due, expired
from .signing import SIGNATURE_HEADER, sign
from .stats import WebhookCollector, WebhookStats

logger = logging.getLogger(__name__)

#: Entries read at a time, and held at most (claiming a dead consumer's ignores the cap,
#: so that the heads others wait for are always taken over).
READ_COUNT = 100
MAX_HELD = 1000
CONCURRENCY = 16


#: How long a stop waits for the loop's current round (its blocking read is 1 s at most).
_STOP_WAIT_SECONDS = 3.0


class DeliveryWorker:
    def __init__(
        self,
        queue: WebhookQueue,
        settings: Settings,
        http: httpx.AsyncClient,
        consumer: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.http = http
        self.consumer = consumer
        self.clock = clock
        self.hooks: dict[str, WebhookConfig] = {h.hook_id: h for h in settings.WEBHOOKS}
        self.held: dict[str, Delivery] = {}
        self.stats = WebhookStats()
        self._sending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._claim_cursor = "0-0"
        self._last_claim = float("-inf")
        self._last_refresh = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- life ---

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        # The loop first, so that no delivery starts after the wait below began: it ends at
        # its next turn (a blocking read lasts a second at most); cancelling it inside
        # redis-py's XREADGROUP BLOCK can leave that connection unclosed, and redis-py may
        # swallow the cancellation. Only a loop that does not end in time is cancelled.
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), _STOP_WAIT_SECONDS)
            except TimeoutError:
                await stop_task(self._task)
            self._task = None
        # Then the deliveries on their way: they end by themselves (their HTTP call has a
        # timeout, then one Redis write); cancelled inside that write, redis-py would leave
        # its connection unclosed. One that does not end in time is cancelled (it stays
        # pending: at least once).
        sending = list(self._sending)
        if sending:
            _, late = await asyncio.wait(
                sending, timeout=self.settings.WEBHOOK_TIMEOUT_SECONDS + _STOP_WAIT_SECONDS
            )
            for task in late:
                await stop_task(task)

    async def _run(self) -> None:
        pause = 0.05
        while not self._stopping:
            try:
                await self.queue.ensure_group()
                while not self._stopping:
                    await self.round()
                    pause = 0.05
            except (RedisError, OSError) as error:
                logger.warning("webhooks: the queue failed (%r); trying again", error)
                self.stats.queue_errors += 1
                await asyncio.sleep(pause)  # a backoff between reconnects, not a wait
                pause = min(pause * 2, 2.0)

    # --- one round ---

    async def round(self) -> None:
        now = self.clock()
        claim_idle = self.settings.WEBHOOK_CLAIM_IDLE_SECONDS
        if now - self._last_refresh >= claim_idle / 4:
            self._last_refresh = now
            busy = [d.entry_id for d in self.held.values()]
            for lost in await self.queue.refresh(self.consumer, busy):
                delivery = self.held.get(lost)
                if delivery is not None and not delivery.in_flight:
                    del self.held[lost]
        if now - self._last_claim >= claim_idle / 4:
            self._last_claim = now
            await self._claim(int(claim_idle * 1000))
        if len(self.held) < MAX_HELD:
            for delivery in await self.queue.read_new(self.consumer, READ_COUNT, self._block_ms()):
                self.held.setdefault(delivery.entry_id, delivery)
        await self._send_due()
        self.stats.backlog = await self.queue.backlog()

    async def _claim(self, min_idle_ms: int) -> None:
        cursor, claimed = await self.queue.claim_dead(
            self.consumer, min_idle_ms, self._claim_cursor
        )
        self._claim_cursor = cursor
        for delivery in claimed:
            if delivery.entry_id not in self.held:
                self.held[delivery.entry_id] = delivery
                self.stats.claimed += 1
        if cursor == "0-0":
            await self.queue.forget_idle_consumers(self.consumer, min_idle_ms * 10)

    def _block_ms(self) -> int:
        """Wait for new entries at most until something held is due (1 s at most)."""
        waiting = [d.next_at for d in self.held.values() if not d.in_flight]
        if not waiting and self.held:
            return 50  # only deliveries on their way: look again soon
        if not waiting:
            return 1000
        until = min(waiting) - self.clock()
        return max(20, min(1000, int(until * 1000)))

    async def _send_due(self) -> None:
        pairs = sorted({d.order_key for d in self.held.values() if not d.in_flight})
        heads = await self.queue.heads(pairs)
        for delivery in due(self.held.values(), heads, self.clock()):
            delivery.in_flight = True
            task = asyncio.create_task(self._deliver(delivery))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    # --- one delivery ---

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            async with self._slots:
                await self._attempt(delivery)
        except (RedisError, OSError) as error:
            logger.warning("webhooks: recording delivery %s failed (%r)", delivery.entry_id, error)
        finally:
            delivery.in_flight = False

    async def _attempt(self, delivery: Delivery) -> None:
        hook = self.hooks.get(delivery.hook_id)
        if hook is None:  # the hook was removed from WEBHOOKS: nobody to send it to
            await self._finish(delivery, "gave_up", "hook removed", "no such hook in WEBHOOKS")
            return
        status, error = await self._post(hook, delivery)
        if 200 <= (status or 0) < 300:
            await self._finish(delivery, "delivered", str(status))
            self.stats.count(delivery.hook_id, "delivered")
            return
        delivery.attempts += 1
        self.stats.count(delivery.hook_id, "failed")
        label = str(status) if status else "error"
        if expired(delivery, int(time.time() * 1000), self.settings.WEBHOOK_MAX_AGE_SECONDS):
            logger.error(
                "webhooks: gave up on %s to %s after %d attempts (%s)",
                delivery.event_id,
                hook.url,
                delivery.attempts,
                error,
            )
            self.stats.count(delivery.hook_id, "gave_up")
            await self._finish(delivery, "gave_up", label, error)
            return
        delay = backoff(
            delivery.attempts,
            self.settings.WEBHOOK_BACKOFF_MIN_SECONDS,
            self.settings.WEBHOOK_BACKOFF_MAX_SECONDS,
        )
        delivery.next_at = self.clock() + delay
        await self.queue.failed(delivery, label, error)

    async def _finish(self, delivery: Delivery, outcome: str, status: str, error: str = "") -> None:
        await self.queue.done(delivery, outcome, status, error)
        self.held.pop(delivery.entry_id, None)

    async def _post(self, hook: WebhookConfig, delivery: Delivery) -> tuple[int | None, str]:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(hook.secret, delivery.body),
            "X-CS-Event-Id": delivery.event_id,
            "X-CS-Event-Type": delivery.event_type,
            "User-Agent": f"cs-realtime-webhooks ({self.settings.SERVICE_NAME})",
        }
        try:
            response = await self.http.post(hook.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def consumer_name(settings: Settings) -> str:
    return f"{settings.SERVICE_NAME}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@asynccontextmanager
async def delivery_worker(app: FastAPI) -> AsyncIterator[None]:
    """The workbench's extra lifespan: this replica's consumer, while it serves."""
    settings: Settings = app.state.settings
    if not settings.WEBHOOKS or not settings.USE_REDIS_SSE:
        app.state.webhook_worker = None
        yield
        return
    redis = make_redis_client(settings, "webhooks")
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
        worker = DeliveryWorker(
            WebhookQueue(redis, settings), settings, http, consumer_name(settings)
        )
        app.state.webhook_worker = worker
        registry: Any = app.state.metrics
        collector = WebhookCollector(worker.stats)
        registry.register(collector)
        worker.start()
        try:
            yield
        finally:
            await worker.stop()
            registry.unregister(collector)
            await redis.aclose()
