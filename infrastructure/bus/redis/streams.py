"""A channel's history in Redis: its Stream, its epoch, and the reads of them.

Every event of a channel is an entry of ``<prefix>history:{<name>}`` (written by the
publish script), and the Stream's generation is ``<prefix>epoch:{<name>}``. This
module reads them: where a channel's history ends (:meth:`StreamHistory.positions`,
on the bus's pipelined connection, since every stream opened asks) and what came
after a position (:meth:`StreamHistory.after`, on the command pool: replays are
rarer and larger).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from infrastructure.bus.event import ORIGIN_EPOCH, Event, id_key
from infrastructure.bus.history import Replay, judge_replay
from infrastructure.bus.redis.pipe import CommandPipe
from redis.exceptions import RedisError

#: (epoch, id key) of a channel's newest event.
Position = tuple[str, tuple[int, int]]


class ChannelKeys:
    """The Redis keys of a channel (hash-tagged by its name: one slot per channel).

    On a Redis Cluster (``cluster``) the tag is the channel's own hash tag, so that the
    keys live in the slot of the shard channel itself (``SPUBLISH`` from the publish
    script is refused otherwise): ``<prefix>history:{<channel>}`` for a channel without
    braces (its whole name is its tag)."""

    __slots__ = ("_cluster", "prefix")

    def __init__(self, prefix: str, cluster: bool = False) -> None:
        self.prefix = prefix
        self._cluster = cluster

    def stream(self, channel: str) -> str:
        return f"{self.prefix}history:{self._tagged(channel)}"

    def epoch(self, channel: str) -> str:
        return f"{self.prefix}epoch:{self._tagged(channel)}"

    def _tagged(self, channel: str) -> str:
        if not self._cluster:
            return f"{{{channel[len(self.prefix) :]}}}"
        tag = hash_tag(channel)
        return f"{{{channel}}}" if tag == channel else f"{{{tag}}}:{channel}"


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes of ``key``: the text between the first ``{`` and the
    next ``}`` when that is not empty, else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


class StreamHistory:
    """Reads of the channels' Streams."""

    def __init__(
        self,
        keys: ChannelKeys,
        pipe: CommandPipe | None,
        pool: aioredis.Redis,
        history_length: int,
    ) -> None:
        """``pipe`` None (a cluster): every read goes through the pool, which routes
        each key to its slot's primary."""
        self.keys = keys
        self._pipe = pipe
        self._pool = pool
        self._history_length = history_length

    async def positions(self, channels: Sequence[str]) -> list[Position | None]:
        """(epoch, newest id key) of each channel's history, None where it has none:
        two reads per channel, all in one write on the bus's connection."""
        commands: list[tuple[str | int, ...]] = []
        for channel in channels:
            commands.append(("GET", self.keys.epoch(channel)))
            commands.append(("XREVRANGE", self.keys.stream(channel), "+", "-", "COUNT", 1))
        answers: list[Any]
        if self._pipe is not None:
            answers = await self._pipe.execute_many(commands)
        else:
            async with self._pool.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                answers = await pipe.execute()
        positions: list[Position | None] = []
        for index in range(len(channels)):
            epoch, last = answers[2 * index], answers[2 * index + 1]
            if epoch is None or not last:
                positions.append(None)
            else:
                positions.append((text(epoch), id_key(text(last[0][0]))))
        return positions

    async def after(self, channel: str, epoch: str, event_id: str) -> Replay:
        """What came on ``channel`` after (epoch, event_id), or a reset when that
        position cannot be honoured (see :func:`~infrastructure.bus.history.judge_replay`)."""
        async with self._pool.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.epoch(channel))
            pipe.xinfo_stream(self.keys.stream(channel))
            try:
                current, info = await pipe.execute()
            except RedisError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                current, info = None, None
        current_epoch = current.decode() if current else None
        if info is None:
            current_epoch = None
        first = info.get("first-entry") if info else None
        max_deleted = self._trimmed_up_to(info, first)
        first_key = id_key(text(first[0])) if first else None
        reset = judge_replay(epoch, event_id, current_epoch, first_key, max_deleted)
        if current_epoch is None:
            return Replay([], reset=reset)
        start = "-" if reset or epoch == ORIGIN_EPOCH else f"({event_id}"
        entries: Any = await self._pool.xrange(self.keys.stream(channel), min=start, max="+")
        events = [
            Event(channel, current_epoch, text(entry_id), fields[b"e"])
            for entry_id, fields in entries
        ]
        return Replay(events, reset=reset)

    def _trimmed_up_to(self, info: Any, first: Any) -> tuple[int, int]:
        """The newest id that may have been trimmed away ((0, 0): none).

        ``XADD MAXLEN ~`` trims without updating ``max-deleted-entry-id``, so trimming
        is judged by the count: more entries added than kept means everything
        before the first entry kept may be gone. (Redis < 7 reports neither: there,
        a full stream is taken as trimmed.)
        """
        if not info or not first:
            return (0, 0)
        length = int(info.get("length", 0))
        added = info.get("entries-added")
        trimmed = int(added) > length if added is not None else length >= self._history_length
        if not trimmed:
            return (0, 0)
        ms, seq = id_key(text(first[0]))
        return (ms, seq - 1) if seq else (ms - 1, 2**63)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
