"""Publishing one event: the publish script's call on the bus's pipelined connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import hiredis

from infrastructure.bus.history import new_epoch
from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.bus.redis.publish_script import PublishCall
from infrastructure.bus.redis.streams import ChannelKeys
from infrastructure.events import dumps
from redis.exceptions import NoScriptError, RedisError


class NotReplicated(RedisError):
    """The event is on the primary, but fewer replicas than required confirmed it
    (``WAIT``): it is not acknowledged (a failover now could lose it)."""


#: How an ephemeral event's message starts: the script's ``<epoch> <id> <tag> `` with the
#: epoch and id empty (the subscriber delivers it without a position).
EPHEMERAL_HEAD: Final = b"  - "


def _no_acks(channel: str) -> int:
    return 0


def _no_route(channel: str) -> CommandPipe:
    raise RedisError("the publisher has no connection")


class Publisher:
    """Runs the publish script (XADD + epoch + PUBLISH) for one event.

    Every event gets a publisher uid (unique per process and event): a retry, or an
    outbox flush after an attempt whose reply was lost, asks the script to look for
    it first (``check``), so the event is never written twice.
    """

    def __init__(
        self,
        pipe: CommandPipe | None,
        keys: ChannelKeys,
        history_length: int,
        ttl_ms: int,
        required_acks: Callable[[str], int] = _no_acks,
        ack_timeout_ms: int = 500,
        pipe_for: Callable[[str], CommandPipe] | None = None,
    ) -> None:
        self._pipe = pipe
        #: On a cluster (no one ``pipe``): the connection to the primary of a channel's slot.
        self._route = pipe_for or _no_route
        #: How many replicas must confirm an event before it is acknowledged (``WAIT``,
        #: written with the script, in one write; nothing is added when 0).
        self._required_acks = required_acks
        self._ack_timeout_ms = ack_timeout_ms
        self._waits: dict[int, bytes] = {}
        self._uid_prefix = new_epoch()[:8] + ":"
        self._epoch_base = new_epoch()[:6]
        self._uid_seq = 0
        self._call = PublishCall(
            keys.stream, keys.epoch, history_length, ttl_ms, sharded=pipe_for is not None
        )

    async def run_ephemeral(self, channel: str, body: bytes) -> None:
        """``PUBLISH`` alone (``SPUBLISH`` to the channel's primary on a cluster): no history
        entry, no id, no replica acknowledgement. The message reads as one with an empty
        epoch and id (see ``EPHEMERAL_HEAD``)."""
        if self._pipe is not None:
            await self._pipe.execute("PUBLISH", channel, EPHEMERAL_HEAD + body)
        else:
            await self._route(channel).execute("SPUBLISH", channel, EPHEMERAL_HEAD + body)

    def next_uid(self) -> str:
        self._uid_seq += 1
        return f"{self._uid_prefix}{self._uid_seq:x}"

    async def run(
        self, channel: str, body: bytes, tag: str, uid: str, check: bool = False
    ) -> tuple[str, str, bool]:
        """(epoch, id) of the event in its channel's history, and whether this call
        wrote it (False: an earlier attempt had, and nothing was published now)."""
        # The epoch a new Stream would get: unique per process and publish is enough
        # (epochs only need to differ between generations of one channel).
        epoch = f"{self._epoch_base}{self._uid_seq:x}"[:16]
        call = self._call
        pipe = self._pipe
        if pipe is None:
            pipe = self._route(channel)
        acks = self._required_acks(channel)
        if acks:
            return await self._run_replicated(pipe, channel, body, epoch, tag, uid, check, acks)
        result: Any
        try:
            result = await pipe.execute_packed(call.packed(channel, body, epoch, tag, uid, check))
        except NoScriptError:
            # A Redis that restarted, or had its script cache flushed: EVAL loads it.
            args = call.args(channel, body, epoch, tag, uid, check)
            result = await pipe.execute("EVAL", call.script, *args)
        # A third element: already written by an earlier attempt.
        return result[0].decode(), result[1].decode(), len(result) == 2

    async def _run_replicated(
        self,
        pipe: CommandPipe,
        channel: str,
        body: bytes,
        epoch: str,
        tag: str,
        uid: str,
        check: bool,
        acks: int,
    ) -> tuple[str, str, bool]:
        """:meth:`run`, then ``WAIT acks timeout`` on the same connection (which covers
        every write before it): :class:`NotReplicated` when fewer replicas confirm."""
        wait = self._waits.get(acks)
        if wait is None:
            command: Any = ("WAIT", acks, self._ack_timeout_ms)
            wait = self._waits[acks] = hiredis.pack_command(command)
        call = self._call
        result, confirmed = await pipe.execute_packed_many(
            call.packed(channel, body, epoch, tag, uid, check) + wait, 2
        )
        if isinstance(result, NoScriptError):
            args = call.args(channel, body, epoch, tag, uid, check)
            result, confirmed = await pipe.execute_packed_many(
                hiredis.pack_command(("EVAL", call.script, *args)) + wait, 2
            )
        if isinstance(result, Exception):
            raise result
        if isinstance(confirmed, Exception):
            raise confirmed
        if confirmed < acks:
            raise NotReplicated(
                f"{confirmed} of {acks} replicas confirmed within {self._ack_timeout_ms} ms"
            )
        return result[0].decode(), result[1].decode(), len(result) == 2


def as_body(message: bytes | str | dict[str, Any]) -> bytes:
    """What is published: a non-empty JSON object (``id`` and ``epoch`` are the bus's)."""
    if isinstance(message, bytes):
        body = message
    elif isinstance(message, str):
        body = message.encode()
    else:
        body = dumps({k: v for k, v in message.items() if k not in ("id", "epoch")})
    if not body.startswith(b"{") or body == b"{}":
        raise ValueError("an SSE message is a non-empty JSON object")
    return body
