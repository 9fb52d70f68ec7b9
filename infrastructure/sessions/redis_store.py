"""The session store on Redis: state shared by every replica of both services.

Key layout (``P`` = ``record_log.store_prefix``: ``sse:store:`` by default; on a Redis Cluster
``sse:{desk}:store:``, one slot for every key below)::

    P sess:{<name>}     HASH    status, agent_id, created_at, updated_at,
                                waiting_since, escalation_reason (times in epoch ms;
                                an absent field is None)
    P msgs:{<name>}     STREAM  the transcript: sender, sender_id, content, ts;
                                capped at ``max_messages`` (XADD MAXLEN); the stream id
                                is the message id
    P queue:waiting     ZSET    member = session name, score = waiting_since (ms)
    P record            STREAM  every change of every session, for the archiver
                                (``record_log.py``); each script appends to it as
                                its last key, with the session name and MAXLEN as
                                its last two arguments

The ``{<name>}`` hash tag puts one session's keys on one Redis Cluster slot. The
queue is one global key; because every transition script writes the session and
the queue together, the store needs a single Redis primary (Sentinel is fine):
on Redis Cluster the queue would have to become a per-shard index. The session
and its transcript expire ``SESSION_TTL_SECONDS`` after their last write; the
queue never expires, and a member whose session expired is dropped by ``queue()``.

Each state change is one Lua script (``*.lua`` beside this module) that checks
the current state and writes in one atomic step; it answers with a status code
that :func:`redis_keys.raise_for` turns into the exception of the in-memory store. The
desk's keys (``load``, ``waits``, ``agents``, ``agent:<id>``, ``conn:<id>``) are in
``infrastructure/desk/redis_desk.py``; agents' notes are ``P notes:{<name>}`` (a STREAM,
never read by a customer's path); ``P record`` is the record stream (``record_log.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.config import Settings
from infrastructure.events import check_name

from .models import (
    AlreadyRated,
    ChatMessage,
    NotClosed,
    Note,
    NotHolder,
    Session,
    SessionExists,
    SessionNotFound,
    SessionStatus,
    datetime_to_ms,
    ms_to_datetime,
    now_ms,
)
from .record_log import record_key, store_prefix
from .redis_keys import (
    MARK_READ,
    OK,
    SessionKeys,
    decode_hash,
    lua_script,
    message_from_entry,
    pairs,
    raise_for,
    script_text,
    session_from_hash,
    text,
)
from .store import DEFAULT_MAX_MESSAGES, DEFAULT_MESSAGE_LIMIT
from .transitions import (
    CANCEL_FROM,
    ESCALATE_FROM,
    RELEASE_FROM,
    REQUEUE_FROM,
    check_request,
)

# Re-exported: the desk's scripts are loaded the same way.
__all__ = ["RedisSessionStore", "SessionKeys", "lua_script", "pairs", "session_from_hash"]


class RedisSessionStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        clock: Callable[[], int] = now_ms,
        reads: CommandPipe | None = None,
    ) -> None:
        """``reads``: where :meth:`get` reads, when given. Every stream opened reads its
        session first; on the bus's pipelined connection that costs half the CPU of a
        pooled command and no pooled connection per concurrent open."""
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        self._redis = redis
        self._reads = reads
        self._ttl = settings.SESSION_TTL_SECONDS
        self._max_messages = max_messages
        self._clock = clock
        prefix, clustered = settings.REDIS_SSE_CHANNEL_PREFIX, settings.redis_clustered
        self.keys = SessionKeys(store_prefix(prefix, clustered))
        assert self.keys.record == record_key(prefix, clustered)
        self._record_maxlen = settings.RECORD_STREAM_MAXLEN
        self._create = redis.register_script(script_text("create.lua"))
        self._transition = redis.register_script(
            lua_script(__package__, "transition.lua", record_maxlen=settings.RECORD_STREAM_MAXLEN)
        )
        self._append = redis.register_script(script_text("append_message.lua"))
        self._rate = redis.register_script(script_text("rate.lua"))
        self._note = redis.register_script(script_text("append_note.lua"))
        self._read_up = redis.register_script(MARK_READ)

    def _record_args(self, name: str) -> tuple[str, int]:
        """The last two arguments of every script: for its record entry."""
        return name, self._record_maxlen

    async def _move(
        self,
        name: str,
        requested: SessionStatus,
        agent_id: str | None,
        reason: str | None = None,
        only_from: frozenset[SessionStatus] | None = None,
        *,
        front: bool = False,
    ) -> Session:
        check_request(requested, agent_id)
        reply = await self._transition(
            keys=[self.keys.session(name), self.keys.queue, self.keys.record],
            args=[
                self.keys.prefix,
                name,
                str(requested),
                agent_id or "",
                reason or "",
                self._clock(),
                self._ttl,
                ",".join(sorted(only_from)) if only_from else "",
                "1" if front else "",
            ],
        )
        code = text(reply[0])
        if code != OK:
            raise_for(code, reply, name, requested, agent_id)
        return session_from_hash(name, pairs(reply[1:]))

    async def create(self, session_name: str, display_name: str | None = None) -> Session:
        # The name becomes part of Redis keys (and their hash tag): never let a
        # "{", ":" or "*" in; routes check it too, this is the last line.
        check_name(session_name)
        now = self._clock()
        created = await self._create(
            keys=[self.keys.session(session_name), self.keys.record],
            args=[now, self._ttl, display_name or "", *self._record_args(session_name)],
        )
        if not int(created):
            raise SessionExists(session_name)
        at = ms_to_datetime(now)
        return Session(
            session_name=session_name, created_at=at, updated_at=at, display_name=display_name
        )

    async def get(self, session_name: str) -> Session:
        raw = await self._read("HGETALL", self.keys.session(session_name))
        # A map in RESP3 (and from redis-py's client), a flat list of fields and values
        # in RESP2.
        fields = decode_hash(raw) if isinstance(raw, Mapping) else pairs(raw)
        if "status" not in fields:
            raise SessionNotFound(session_name)
        return session_from_hash(session_name, fields)

    async def exists(self, session_name: str) -> bool:
        # The field get() looks for: the same answer, nothing to parse.
        return bool(await self._read("HEXISTS", self.keys.session(session_name), "status"))

    async def _read(self, *command: Any) -> Any:
        """A read, on the pipe when there is one (the reads every stream open makes)."""
        if self._reads is None:
            return await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]
        try:
            return await self._reads.execute(*command)
        except RedisConnectionError:
            # Once more, on a new connection (Redis restarted): a read, safe to repeat.
            return await self._reads.execute(*command)

    async def escalate(self, session_name: str, reason: str | None = None) -> Session:
        return await self._move(
            session_name, SessionStatus.WAITING_AGENT, None, reason, only_from=ESCALATE_FROM
        )

    async def requeue(self, session_name: str, agent_id: str | None = None) -> Session:
        return await self._move(
            session_name, SessionStatus.WAITING_AGENT, agent_id, only_from=REQUEUE_FROM, front=True
        )

    async def rate(self, session_name: str, score: int, comment: str | None = None) -> Session:
        reply = await self._rate(
            keys=[self.keys.session(session_name), self.keys.record],
            args=[score, comment or "", self._clock(), *self._record_args(session_name)],
        )
        code = text(reply[0])
        if code == "not_found":
            raise SessionNotFound(session_name)
        if code == "not_closed":
            raise NotClosed(session_name, SessionStatus(text(reply[1])))
        if code == "rated":
            raise AlreadyRated(session_name)
        return session_from_hash(session_name, pairs(reply[1:]))

    async def mark_read(
        self, session_name: str, agent_id: str | None, up_to: str | None = None
    ) -> Session:
        reply = await self._read_up(
            keys=[self.keys.session(session_name)], args=[agent_id or "", up_to or ""]
        )
        code = text(reply[0])
        if code == "not_found":
            raise SessionNotFound(session_name)
        if code == "not_holder":
            raise NotHolder(session_name, agent_id or "", text(reply[1]) or None)
        return session_from_hash(session_name, pairs(reply[1:]))

    async def add_note(self, session_name: str, agent_id: str, content: str) -> Note:
        now = self._clock()
        reply = await self._note(
            keys=[
                self.keys.session(session_name),
                self.keys.notes(session_name),
                self.keys.record,
            ],
            args=[
                agent_id,
                content,
                now,
                self._max_messages,
                self._ttl,
                *self._record_args(session_name),
            ],
        )
        if text(reply[0]) == "not_found":
            raise SessionNotFound(session_name)
        return Note(
            id=text(reply[1]),
            session_name=session_name,
            agent_id=agent_id,
            content=content,
            timestamp=ms_to_datetime(now),
        )

    async def notes(self, session_name: str) -> list[Note]:
        if not await self.exists(session_name):
            raise SessionNotFound(session_name)
        entries = await self._redis.xrange(self.keys.notes(session_name))
        found = []
        for entry_id, raw in entries or []:
            fields = decode_hash(raw or {})
            found.append(
                Note(
                    id=text(entry_id),
                    session_name=session_name,
                    agent_id=fields["agent_id"],
                    content=fields["content"],
                    timestamp=ms_to_datetime(int(fields["ts"])),
                )
            )
        return found

    async def recent_waits(self) -> list[int]:
        return [int(w) for w in await self._redis.lrange(self.keys.waits, 0, -1)]

    async def cancel_wait(self, session_name: str) -> Session:
        return await self._move(session_name, SessionStatus.AI, None, only_from=CANCEL_FROM)

    async def takeover(self, session_name: str, agent_id: str) -> Session:
        return await self._move(session_name, SessionStatus.AGENT_ACTIVE, agent_id)

    async def release(self, session_name: str, agent_id: str) -> Session:
        return await self._move(session_name, SessionStatus.AI, agent_id, only_from=RELEASE_FROM)

    async def close(self, session_name: str, agent_id: str | None = None) -> Session:
        return await self._move(session_name, SessionStatus.CLOSED, agent_id)

    async def set_status(
        self,
        session_name: str,
        status: SessionStatus,
        agent_id: str | None = None,
        *,
        reason: str | None = None,
    ) -> Session:
        return await self._move(session_name, SessionStatus(status), agent_id, reason)

    async def queue(self) -> list[Session]:
        names = [text(n) for n in await self._redis.zrange(self.keys.queue, 0, -1)]
        waiting, stale = await self._load_in(names, SessionStatus.WAITING_AGENT)
        if stale:
            await self._redis.zrem(self.keys.queue, *stale)  # expired while they waited
        return waiting

    async def held_by(self, agent_id: str) -> list[Session]:
        held = await self._redis.hgetall(self.keys.held)
        names = sorted(text(n) for n, a in held.items() if text(a) == agent_id)
        sessions, stale = await self._load_in(names, SessionStatus.AGENT_ACTIVE)
        if stale:  # expired while held
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self.keys.held, *stale)
                pipe.hincrby(self.keys.load, agent_id, -len(stale))
                await pipe.execute()
        return [s for s in sessions if s.agent_id == agent_id]

    async def _load_in(
        self, names: list[str], status: SessionStatus
    ) -> tuple[list[Session], list[str]]:
        """The named sessions that are in ``status`` (in order), and the names whose
        session has expired (for the caller to drop from its index)."""
        if not names:
            return [], []
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.session(name))
            hashes = await pipe.execute()
        found: list[Session] = []
        stale: list[str] = []
        for name, raw in zip(names, hashes, strict=True):
            fields = decode_hash(raw)
            if fields.get("status") == status:
                found.append(session_from_hash(name, fields))
            elif "status" not in fields:
                stale.append(name)
        return found, stale

    async def queue_position(self, session_name: str) -> int | None:
        rank = await self._redis.zrank(self.keys.queue, session_name)
        # ZRANK answers a plain int unless asked WITHSCORE
        return rank + 1 if isinstance(rank, int) else None

    async def append_message(self, message: ChatMessage) -> ChatMessage:
        name = message.session_name
        reply = await self._append(
            keys=[self.keys.session(name), self.keys.transcript(name), self.keys.record],
            args=[
                str(message.sender),
                message.sender_id or "",
                message.content,
                datetime_to_ms(message.timestamp),
                self._max_messages,
                self._ttl,
                self._clock(),
                *self._record_args(name),
            ],
        )
        code = text(reply[0])
        if code == "not_found":
            raise SessionNotFound(name)
        if code == "not_holder":
            raise NotHolder(name, message.sender_id or "", text(reply[1]) or None)
        # Stored at millisecond precision, as it reads back from the stream.
        return message.model_copy(
            update={
                "id": text(reply[1]),
                "timestamp": ms_to_datetime(datetime_to_ms(message.timestamp)),
            }
        )

    async def messages(
        self, session_name: str, limit: int = DEFAULT_MESSAGE_LIMIT
    ) -> list[ChatMessage]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(self.keys.session(session_name))
            pipe.xrevrange(self.keys.transcript(session_name), count=max(limit, 1))
            exists, entries = await pipe.execute()
        if not exists:
            raise SessionNotFound(session_name)
        if limit <= 0:
            return []
        return [message_from_entry(session_name, eid, raw) for eid, raw in reversed(entries)]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False
