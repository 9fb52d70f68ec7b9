"""Publishing one event: the publish script's call on the bus's pipelined connection."""

from __future__ import annotations

from typing import Any

from infrastructure.bus.history import new_epoch
from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.bus.redis.publish_script import PUBLISH_LUA, PublishCall
from infrastructure.bus.redis.streams import ChannelKeys
from redis.exceptions import NoScriptError


class Publisher:
    """Runs the publish script (XADD + epoch + PUBLISH) for one event.

    Every event gets a publisher uid (unique per process and event): a retry, or an
    outbox flush after an attempt whose reply was lost, asks the script to look for
    it first (``check``), so the event is never written twice.
    """

    def __init__(
        self, pipe: CommandPipe, keys: ChannelKeys, history_length: int, ttl_ms: int
    ) -> None:
        self._pipe = pipe
        self._uid_prefix = new_epoch()[:8] + ":"
        self._epoch_base = new_epoch()[:6]
        self._uid_seq = 0
        self._call = PublishCall(keys.stream, keys.epoch, history_length, ttl_ms)

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
        result: Any
        try:
            result = await pipe.execute_packed(call.packed(channel, body, epoch, tag, uid, check))
        except NoScriptError:
            # A Redis that restarted, or had its script cache flushed: EVAL loads it.
            args = call.args(channel, body, epoch, tag, uid, check)
            result = await pipe.execute("EVAL", PUBLISH_LUA, *args)
        # A third element: already written by an earlier attempt.
        return result[0].decode(), result[1].decode(), len(result) == 2
