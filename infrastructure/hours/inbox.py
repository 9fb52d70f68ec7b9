"""Messages customers left out of hours, waiting for an agent: on Redis (every replica sees
them), or in this process in memory mode.

Keys (``P`` = ``settings.area_prefix("hours")``: ``sse:hours:``; on a Redis Cluster
``sse:{hours}:hours:``, one slot for all)::

    P left               ZSET    session name -> when its (latest) message was left (ms)
    P left:<session>     HASH    name, contact, text, left_at
    P opened:<start>     STRING  set once per opening window: its notice was published

A left message is not a place in the live queue: its customer has gone (the desk's sweep
would mark a waiting chat without its customer ``abandoned`` within minutes). It waits here
until an agent marks it done.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import redis.asyncio as aioredis

from infrastructure.bootstrap.sse import SseBus
from infrastructure.config import Settings

#: An opening's notice key outlives the window it stands for.
_OPENED_TTL_SECONDS = 3 * 86_400


@dataclass(frozen=True, slots=True)
class LeftMessage:
    session_name: str
    name: str
    contact: str
    text: str
    left_at_ms: int

    def public(self) -> dict[str, Any]:
        return asdict(self)


class LeftMessages(Protocol):
    async def add(self, message: LeftMessage) -> None: ...
    async def pending(self) -> list[LeftMessage]: ...
    async def done(self, session_name: str) -> bool: ...
    async def announce_once(self, opening: str) -> bool:
        """True the first time ``opening`` is announced (by any replica)."""
        ...


class MemoryLeftMessages:
    def __init__(self) -> None:
        self._left: dict[str, LeftMessage] = {}
        self._opened: set[str] = set()

    async def add(self, message: LeftMessage) -> None:
        self._left.pop(message.session_name, None)
        self._left[message.session_name] = message

    async def pending(self) -> list[LeftMessage]:
        return sorted(self._left.values(), key=lambda m: m.left_at_ms)

    async def done(self, session_name: str) -> bool:
        return self._left.pop(session_name, None) is not None

    async def announce_once(self, opening: str) -> bool:
        if opening in self._opened:
            return False
        self._opened.add(opening)
        return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLeftMessages:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.prefix = settings.area_prefix("hours")

    async def add(self, message: LeftMessage) -> None:
        fields: dict[Any, Any] = {k: str(v) for k, v in asdict(message).items()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{self.prefix}left:{message.session_name}", mapping=fields)
            pipe.zadd(f"{self.prefix}left", {message.session_name: message.left_at_ms})
            await pipe.execute()

    async def pending(self) -> list[LeftMessage]:
        names = [_text(n) for n in await self.redis.zrange(f"{self.prefix}left", 0, 999)]
        found = []
        for name in names:
            raw = await self.redis.hgetall(f"{self.prefix}left:{name}")
            if raw:
                f = {_text(k): _text(v) for k, v in raw.items()}
                found.append(
                    LeftMessage(name, f["name"], f["contact"], f["text"], int(f["left_at_ms"]))
                )
        return found

    async def done(self, session_name: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(f"{self.prefix}left", session_name)
            pipe.delete(f"{self.prefix}left:{session_name}")
            removed, _ = await pipe.execute()
        return bool(removed)

    async def announce_once(self, opening: str) -> bool:
        key = f"{self.prefix}opened:{opening}"
        return bool(await self.redis.set(key, int(time.time()), nx=True, ex=_OPENED_TTL_SECONDS))


_inboxes: WeakKeyDictionary[SseBus, LeftMessages] = WeakKeyDictionary()


def left_messages_of(bus: SseBus) -> LeftMessages:
    """The inbox of ``bus``'s process: on its Redis in Redis mode, else in memory."""
    inbox = _inboxes.get(bus)
    if inbox is None:
        if bus.manager is not None:
            inbox = RedisLeftMessages(bus.manager.redis, bus.settings)
        else:
            inbox = MemoryLeftMessages()
        _inboxes[bus] = inbox
    return inbox
