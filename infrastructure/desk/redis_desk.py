"""The desk on Redis: presence, assignment and the sweep, each one Lua script.

Keys (``P`` = the session store's prefix, ``sse:store:``), beside the session store's::

    P agents            SET   agents seen
    P agent:<id>        HASH  status (what the agent said), seen (what others saw last),
                              gone_since, last_assigned_at
    P conn:<id>         ZSET  replica id -> when its live stream of the agent expires (ms)
    P cconn:{<session>} ZSET  the same for a customer's stream
    P load              HASH  agent id -> chats held
    P waits             LIST  the latest waits before an agent (ms)

A replica refreshes its entries every ``DESK_TICK_SECONDS`` while the streams are open,
so a crashed replica's agents and customers expire after ``PRESENCE_TTL_SECONDS``.
The scripts share ``sessions/lib.lua`` (moves and presence) with the session store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from infrastructure.config import Settings
from infrastructure.sessions.models import (
    AgentAtCapacity,
    AgentUnavailable,
    NotHolder,
    NotTakeable,
    Session,
    SessionNotFound,
    SessionStatus,
    not_takeable_reason,
    now_ms,
)
from infrastructure.sessions.record_log import store_prefix
from infrastructure.sessions.redis_keys import decode_hash
from infrastructure.sessions.redis_store import SessionKeys, lua_script, pairs, session_from_hash

from .models import (
    AgentPresence,
    AgentStatus,
    Assignment,
    PresenceChange,
    PresenceKind,
    SweepResult,
)

#: How many waiting chats one assignment looks at (the rest wait for the next round).
ASSIGN_BATCH = 500


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _changes(flat: Sequence[Any]) -> list[PresenceChange]:
    return [
        PresenceChange(_text(flat[i]), AgentStatus(_text(flat[i + 1])))
        for i in range(0, len(flat), 2)
    ]


class RedisDesk:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        replica: str,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._replica = replica
        self._clock = clock
        self.keys = SessionKeys(
            store_prefix(settings.REDIS_SSE_CHANNEL_PREFIX, settings.redis_clustered)
        )
        cap = settings.RECORD_STREAM_MAXLEN

        def script(name: str) -> AsyncScript:
            return redis.register_script(lua_script(__package__, name, record_maxlen=cap))

        self._presence = script("presence.lua")
        self._assign = script("assign.lua")
        self._sweep = script("sweep.lua")
        self._transfer = script("transfer.lua")
        self._take_over = script("takeover.lua")

    async def _presence_op(
        self, op: str, kind: PresenceKind, ids: Sequence[str], status: str = ""
    ) -> list[Any]:
        now = self._clock()
        expires = now + int(self._settings.PRESENCE_TTL_SECONDS * 1000)
        reply: list[Any] = await self._presence(
            keys=[self.keys.agents],
            args=[self.keys.prefix, op, kind, self._replica, now, expires, status, *ids],
        )
        return reply

    async def enter(self, kind: PresenceKind, ids: Sequence[str]) -> list[PresenceChange]:
        if not ids:
            return []
        return _changes(await self._presence_op("enter", kind, ids))

    async def leave(self, kind: PresenceKind, ids: Sequence[str]) -> list[PresenceChange]:
        if not ids:
            return []
        return _changes(await self._presence_op("leave", kind, ids))

    async def set_status(self, agent_id: str, status: AgentStatus) -> list[PresenceChange]:
        return _changes(await self._presence_op("say", "agent", [agent_id], str(status)))

    async def agents(self, agent_ids: Sequence[str] = ()) -> list[AgentPresence]:
        flat = await self._presence_op("read", "agent", agent_ids)
        capacity = self._settings.AGENT_MAX_CHATS
        found = [
            AgentPresence(
                _text(flat[i]), AgentStatus(_text(flat[i + 1])), int(flat[i + 2]), capacity
            )
            for i in range(0, len(flat), 3)
        ]
        return sorted(found, key=lambda a: a.agent_id)

    async def transfer(
        self, session_name: str, from_agent: str, to_agent: str, note: str = ""
    ) -> Session:
        reply = await self._transfer(
            keys=[self.keys.session(session_name)],
            args=[
                self.keys.prefix,
                session_name,
                from_agent,
                to_agent,
                self._clock(),
                self._settings.AGENT_MAX_CHATS,
                self._settings.SESSION_TTL_SECONDS,
                note,
            ],
        )
        code = _text(reply[0])
        if code == "not_found":
            raise SessionNotFound(session_name)
        if code == "not_holder":
            raise NotHolder(session_name, from_agent, _text(reply[1]) or None)
        if code == "unavailable":
            raise AgentUnavailable(to_agent, _text(reply[1]))
        if code == "full":
            raise AgentAtCapacity(to_agent, int(reply[1]))
        return session_from_hash(session_name, pairs(reply[1:]))

    async def take_over(
        self, session_name: str, supervisor: str, expected_holder: str = ""
    ) -> tuple[Session, str]:
        reply = await self._take_over(
            keys=[self.keys.session(session_name)],
            args=[
                self.keys.prefix,
                session_name,
                supervisor,
                self._clock(),
                self._settings.SESSION_TTL_SECONDS,
                expected_holder,
            ],
        )
        code = _text(reply[0])
        if code == "not_found":
            raise SessionNotFound(session_name)
        if code == "refused":
            status, holder = _text(reply[1]), _text(reply[2])
            why = not_takeable_reason(status, holder, supervisor, expected_holder)
            raise NotTakeable(session_name, why or status)
        return session_from_hash(session_name, pairs(reply[2:])), _text(reply[1])

    async def active_chats(self) -> list[Session]:
        held = await self._redis.hgetall(self.keys.held)
        names = sorted(_text(name) for name in held)
        if not names:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.session(name))
            hashes = await pipe.execute()
        chats = []
        for name, raw in zip(names, hashes, strict=True):
            fields = decode_hash(raw)
            # (An entry whose session expired is left to held_by, which drops it.)
            if fields.get("status") == SessionStatus.AGENT_ACTIVE:
                chats.append(session_from_hash(name, fields))
        return chats

    async def assign(self) -> list[Assignment]:
        flat = await self._assign(
            keys=[self.keys.queue],
            args=[
                self.keys.prefix,
                self._clock(),
                self._settings.AGENT_MAX_CHATS,
                self._settings.SESSION_TTL_SECONDS,
                ASSIGN_BATCH,
            ],
        )
        return [Assignment(_text(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def sweep(self) -> SweepResult:
        s = self._settings
        flat = await self._sweep(
            keys=[self.keys.queue],
            args=[
                self.keys.prefix,
                self._clock(),
                int(s.AGENT_OFFLINE_GRACE_SECONDS * 1000),
                int(s.CUSTOMER_ABANDON_SECONDS * 1000),
                int(s.SESSION_IDLE_CLOSE_SECONDS * 1000),
                s.SESSION_TTL_SECONDS,
            ],
        )
        result = SweepResult([], [], [], [])
        for i in range(0, len(flat), 3):
            kind, a, b = _text(flat[i]), _text(flat[i + 1]), _text(flat[i + 2])
            if kind == "presence":
                result.presence.append(PresenceChange(a, AgentStatus(b)))
            elif kind == "returned":
                result.returned.append(Assignment(a, b))
            elif kind == "abandoned":
                result.abandoned.append(a)
            elif kind == "idle_closed":
                result.idle_closed.append(Assignment(a, b))
        return result
