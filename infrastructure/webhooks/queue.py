"""The durable queue of webhook deliveries in Redis, and its delivery log.

Keys (``P`` = ``settings.area_prefix("webhooks")``: ``sse:webhooks:``; on a Redis Cluster
``sse:{webhooks}:webhooks:``, one slot for all)::

    P queue                  STREAM  one entry per delivery (one event x one hook): hook,
                                     session, type, event, body (the exact bytes sent), created
                                     group "delivery": one consumer per workbench replica
    P order:<hook>:<session> LIST    ids of that pair's entries not yet done, oldest first
                                     (the ordering rule, see schedule.py)
    P hook:<hook>            HASH    the delivery log: delivered, failures, gave_up (counts),
                                     last_status, last_error, last_attempt_at,
                                     last_success_at, consecutive_failures

An entry is added with its order-list entry in one script (:meth:`WebhookQueue.enqueue`);
it is acknowledged, deleted and taken off its order list in one script after a 2xx or when
given up, so ``XLEN`` of the queue is the backlog.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from infrastructure.config import Settings

from .schedule import Delivery

GROUP: Final = "delivery"

_ENQUEUE = """
local out = {}
for i = 7, #ARGV do
  local hook = ARGV[i]
  local id = redis.call('XADD', KEYS[1], '*', 'hook', hook, 'session', ARGV[2], 'type', ARGV[3],
    'event', ARGV[4], 'body', ARGV[5], 'created', ARGV[6])
  redis.call('RPUSH', ARGV[1] .. 'order:' .. hook .. ':' .. ARGV[2], id)
  out[#out + 1] = id
end
return out
"""

# KEYS[1] queue; ARGV[1] group, ARGV[2] id, ARGV[3] order key, ARGV[4] log key, ARGV[5] now
# (s), ARGV[6] outcome ('delivered' | 'gave_up'), ARGV[7] status, ARGV[8] error
_DONE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('LREM', ARGV[3], 1, ARGV[2])
redis.call('HINCRBY', ARGV[4], ARGV[6], 1)
redis.call('HSET', ARGV[4], 'last_status', ARGV[7], 'last_attempt_at', ARGV[5])
if ARGV[6] == 'delivered' then
  redis.call('HSET', ARGV[4], 'last_success_at', ARGV[5], 'consecutive_failures', 0,
    'last_error', '')
else
  redis.call('HSET', ARGV[4], 'last_error', ARGV[8])
end
return 1
"""

# ARGV[1] log key, ARGV[2] now (s), ARGV[3] status, ARGV[4] error
_FAILED = """
redis.call('HINCRBY', ARGV[1], 'failures', 1)
redis.call('HINCRBY', ARGV[1], 'consecutive_failures', 1)
redis.call('HSET', ARGV[1], 'last_status', ARGV[3], 'last_attempt_at', ARGV[2],
  'last_error', ARGV[4])
return 1
"""

# The head of each order list, dropping heads whose entry is gone from the queue (a queue
# deleted by hand must not block a session forever). KEYS[1] queue; ARGV order keys.
_HEADS = """
local out = {}
for i = 1, #ARGV do
  local head = false
  while true do
    head = redis.call('LINDEX', ARGV[i], 0)
    if not head then break end
    if #redis.call('XRANGE', KEYS[1], head, head) > 0 then break end
    redis.call('LPOP', ARGV[i])
  end
  out[i] = head or ''
end
return out
"""

# Keep what this consumer holds from looking dead (resets its idle time), only for entries it
# still owns; answers the ids it no longer owns. KEYS[1] queue; ARGV[1] group, ARGV[2] me.
_REFRESH = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WebhookQueue:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.prefix = settings.area_prefix("webhooks")
        self.stream = self.prefix + "queue"
        self._enqueue = redis.register_script(_ENQUEUE)
        self._done = redis.register_script(_DONE)
        self._failed = redis.register_script(_FAILED)
        self._heads = redis.register_script(_HEADS)
        self._refresh = redis.register_script(_REFRESH)

    def order_key(self, hook_id: str, session_name: str) -> str:
        return f"{self.prefix}order:{hook_id}:{session_name}"

    def log_key(self, hook_id: str) -> str:
        return f"{self.prefix}hook:{hook_id}"

    # --- producing ---

    async def enqueue(
        self, hooks: Sequence[str], session_name: str, event_type: str, event_id: str, body: bytes
    ) -> list[str]:
        if not hooks:
            return []
        created = int(time.time() * 1000)
        ids: list[Any] = await self._enqueue(
            keys=[self.stream],
            args=[self.prefix, session_name, event_type, event_id, body, created, *hooks],
        )
        return [_text(i) for i in ids]

    # --- consuming ---

    async def ensure_group(self) -> None:
        try:
            # From the start: entries added before any worker existed are delivered too.
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read_new(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        reply: Any = await self.redis.xreadgroup(
            GROUP, consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}.
        streams = reply.values() if isinstance(reply, dict) else [e for _, e in reply or []]
        return [d for entries in streams for d in _deliveries(_flat(entries))]

    async def claim_dead(
        self, consumer: str, min_idle_ms: int, start: str, count: int = 100
    ) -> tuple[str, list[Delivery]]:
        """Entries idle that long in another consumer (one that died): now ours."""
        reply = await self.redis.xautoclaim(
            self.stream, GROUP, consumer, min_idle_ms, start_id=start, count=count
        )
        cursor, entries = _text(reply[0]), reply[1]
        return cursor, list(_deliveries(entries))

    async def refresh(self, consumer: str, entry_ids: Sequence[str]) -> set[str]:
        if not entry_ids:
            return set()
        lost = await self._refresh(keys=[self.stream], args=[GROUP, consumer, *entry_ids])
        return {_text(i) for i in lost}

    async def heads(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        if not pairs:
            return {}
        found = await self._heads(keys=[self.stream], args=[self.order_key(h, s) for h, s in pairs])
        return {pair: (_text(h) or None) for pair, h in zip(pairs, found, strict=True)}

    async def done(self, delivery: Delivery, outcome: str, status: str, error: str = "") -> None:
        await self._done(
            keys=[self.stream],
            args=[
                GROUP,
                delivery.entry_id,
                self.order_key(delivery.hook_id, delivery.session_name),
                self.log_key(delivery.hook_id),
                int(time.time()),
                outcome,
                status,
                error[:500],
            ],
        )

    async def failed(self, delivery: Delivery, status: str, error: str) -> None:
        await self._failed(
            # KEYS: the queue, unused by the script, routes it to the webhooks' slot on a
            # Redis Cluster.
            keys=[self.stream],
            args=[self.log_key(delivery.hook_id), int(time.time()), status, error[:500]],
        )

    async def backlog(self) -> int:
        return int(await self.redis.xlen(self.stream))

    async def log(self, hook_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.log_key(hook_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def forget_idle_consumers(self, me: str, idle_ms: int) -> None:
        """Consumers of replicas long gone, with nothing pending, leave the group's list."""
        try:
            consumers = await self.redis.xinfo_consumers(self.stream, GROUP)
        except ResponseError:
            return
        for info in consumers:
            name = _text(info["name"])
            if name != me and int(info["pending"]) == 0 and int(info["idle"]) > idle_ms:
                await self.redis.xgroup_delconsumer(self.stream, GROUP, name)


def _flat(entries: Any) -> Any:
    # RESP3 may wrap a stream's entries in one more list.
    if (
        isinstance(entries, list)
        and entries
        and isinstance(entries[0], list)
        and entries[0]
        and isinstance(entries[0][0], list)
    ):
        return entries[0]
    return entries


def _deliveries(entries: Any) -> list[Delivery]:
    found: list[Delivery] = []
    for entry_id, fields in entries or []:
        if not fields:  # deleted meanwhile
            continue
        f = {_text(k): v for k, v in fields.items()}
        found.append(
            Delivery(
                entry_id=_text(entry_id),
                hook_id=_text(f["hook"]),
                session_name=_text(f["session"]),
                event_type=_text(f["type"]),
                event_id=_text(f["event"]),
                body=f["body"] if isinstance(f["body"], bytes) else str(f["body"]).encode(),
                created_ms=int(f["created"]),
            )
        )
    return found
