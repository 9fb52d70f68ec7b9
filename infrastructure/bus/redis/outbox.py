"""Events published here while Redis was unreachable, kept until Redis is back.

Local listeners got each such event at once (without an id); it waits here, in
order, bounded by ``SSE_OUTBOX_MAXSIZE`` (the oldest is dropped, and counted, when
full), and is published when the subscriber is back (after its catch-up) or, when
only a command failed, by a retry task. Each is published with a tag: when its
message comes back on this process's subscription, the tag says "ours, already
delivered here", and the listeners get only its id (:meth:`Outbox.claim`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from infrastructure.bus.redis.publisher import Publisher
from infrastructure.bus.waiting import stop_task
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    channel: str
    body: bytes
    tag: str
    uid: str
    #: Redis may have run it (the reply was lost): look for it before writing.
    attempted: bool


class Outbox:
    """The bounded outbox of one process (see the module)."""

    def __init__(
        self,
        publisher: Publisher,
        maxsize: int,
        tag_prefix: str,
        backoff: tuple[float, float],
    ) -> None:
        self._publisher = publisher
        self._maxsize = maxsize
        self._tag_prefix = tag_prefix
        self._backoff = backoff
        self._items: deque[_Pending] = deque()
        #: Tags of events flushed and not yet seen coming back.
        self._unclaimed: set[str] = set()
        self._tag_seq = 0
        self._flush_lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self.overflow = 0
        self.published = 0
        self.last_error: str | None = None

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def keep(self, channel: str, body: bytes, uid: str, attempted: bool) -> None:
        if len(self._items) >= self._maxsize:
            lost = self._items.popleft()
            self.overflow += 1
            logger.error(
                "SSE outbox full (SSE_OUTBOX_MAXSIZE=%d): the oldest waiting event for %s "
                "will not reach other processes",
                self._maxsize,
                lost.channel,
            )
        self._tag_seq += 1
        tag = f"{self._tag_prefix}{self._tag_seq}"
        self._items.append(_Pending(channel, body, tag, uid, attempted))

    def claim(self, tag: str) -> bool:
        """Whether the message tagged ``tag`` is one of ours, flushed from here (its
        listeners here already had the event)."""
        if tag in self._unclaimed:
            self._unclaimed.discard(tag)
            return True
        return False

    async def flush_once(self) -> None:
        """Publish what waits, in order; raises at the first failure (what failed
        stays at the head)."""
        # One flusher at a time (the reconnect path and the retry task): the head
        # of the outbox is written once.
        async with self._flush_lock:
            while self._items:
                item = self._items[0]
                self._unclaimed.add(item.tag)
                try:
                    _, _, written = await self._publisher.run(
                        item.channel, item.body, item.tag, item.uid, check=item.attempted
                    )
                except (RedisError, OSError):
                    self._unclaimed.discard(item.tag)
                    item.attempted = True
                    raise
                if not written:  # an earlier attempt had: no message will come back
                    self._unclaimed.discard(item.tag)
                self._items.popleft()
                self.published += 1

    def start_retry(self, still_up: Callable[[], bool]) -> None:
        """Flush in the background, with backoff, while ``still_up()`` (the subscriber
        is up: only a command failed, no reconnect will come to flush)."""
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._retry_while(still_up))

    async def _retry_while(self, still_up: Callable[[], bool]) -> None:
        delay, longest = self._backoff
        while self._items and still_up():
            try:
                await self.flush_once()
            except (RedisError, OSError) as exc:
                self.last_error = repr(exc)
                await asyncio.sleep(random.uniform(0, delay))  # backoff between tries
                delay = min(delay * 2, longest)

    async def close(self) -> None:
        if self._retry is not None:
            await stop_task(self._retry)
            self._retry = None
