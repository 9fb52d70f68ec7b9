"""The publish script (history entry, epoch and PUBLISH in one round trip) and its call.

Every event a process publishes is one ``EVALSHA`` of this script on the command
pipe, with thirteen arguments. ``hiredis.pack_command`` frames each argument with
an ``sprintf`` (a measurable share of a publish: bench/README.md). The call is
packed here instead: what is fixed for a channel (its keys, the channel, the
history limits) is packed once and kept, and a publish frames only its body and
four short values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

import hiredis

# KEYS: history stream, epoch key. ARGV: channel, body, maxlen, ttl ms, candidate
# epoch, tag, publisher uid, check. A Stream that does not exist gets a new epoch,
# even if an old epoch key survived it: its ids restart from nothing the client
# has seen. With check = '1' (a retry, or an outbox flush after a failed attempt,
# when Redis may have run the first attempt and only its reply was lost) the newest
# entries are searched for the uid first: the event is never written twice.
PUBLISH_LUA: Final = """
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  local recent = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 64)
  for _, entry in ipairs(recent) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'u' and fields[i + 1] == ARGV[7] then
        return {redis.call('GET', KEYS[2]) or '', entry[1], 'dup'}
      end
    end
  end
end
local epoch = redis.call('GET', KEYS[2])
if (not epoch) or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = ARGV[5]
  redis.call('SET', KEYS[2], epoch)
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2], 'u', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. id .. ' ' .. ARGV[6] .. ' ' .. ARGV[2])
return {epoch, id}
"""
PUBLISH_SHA: Final = hashlib.sha1(PUBLISH_LUA.encode()).hexdigest()
#: On a Redis Cluster: the same, with ``SPUBLISH`` (a shard channel). Redis runs it
#: because the channel hashes to the slot of the script's keys (the Stream and the
#: epoch key are tagged with the channel's name: :class:`~.streams.ChannelKeys`).
SPUBLISH_LUA: Final = PUBLISH_LUA.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")
SPUBLISH_SHA: Final = hashlib.sha1(SPUBLISH_LUA.encode()).hexdigest()

#: Tag of a message published normally; an outbox flush tags its messages so that
#: the publishing process, whose listeners already had them, does not deliver them twice.
NO_TAG: Final = "-"

#: Channels whose fixed part is kept packed; past this many the table starts over
#: (a process publishing to more channels than this packs some heads again).
HEADS_KEPT: Final = 4096

_ARGUMENTS: Final = 13  # EVALSHA, sha, numkeys, 2 keys, 8 ARGV
_TAIL: Final = b"$%d\r\n%b\r\n%b$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$1\r\n%b\r\n"


class PublishCall:
    """The script's call for one publish: :meth:`packed` for the wire (``EVALSHA``),
    :meth:`args` for an ``EVAL`` when Redis has lost the script."""

    def __init__(
        self,
        stream_key: Callable[[str], str],
        epoch_key: Callable[[str], str],
        maxlen: int,
        ttl_ms: int,
        sharded: bool = False,
    ) -> None:
        #: The script's text (for an ``EVAL`` when Redis lost it) and its SHA.
        self.script = SPUBLISH_LUA if sharded else PUBLISH_LUA
        self._sha = SPUBLISH_SHA if sharded else PUBLISH_SHA
        self._stream_key = stream_key
        self._epoch_key = epoch_key
        self._maxlen = maxlen
        self._ttl_ms = ttl_ms
        self._limits = _bulk_strings((maxlen, ttl_ms))
        self._heads: dict[str, bytes] = {}

    def args(
        self, channel: str, body: bytes, epoch: str, tag: str, uid: str, check: bool
    ) -> tuple[Any, ...]:
        """Everything after the script (or its SHA): ``numkeys``, KEYS, ARGV."""
        return (
            2,
            self._stream_key(channel),
            self._epoch_key(channel),
            channel,
            body,
            self._maxlen,
            self._ttl_ms,
            epoch,
            tag,
            uid,
            "1" if check else "0",
        )

    def packed(
        self, channel: str, body: bytes, epoch: str, tag: str, uid: str, check: bool
    ) -> bytes:
        """``EVALSHA <sha> <args>`` as ``hiredis.pack_command`` would pack it."""
        head = self._heads.get(channel)
        if head is None:
            head = self._head(channel)
        epoch_b, tag_b, uid_b = epoch.encode(), tag.encode(), uid.encode()
        return head + _TAIL % (
            len(body),
            body,
            self._limits,
            len(epoch_b),
            epoch_b,
            len(tag_b),
            tag_b,
            len(uid_b),
            uid_b,
            b"1" if check else b"0",
        )

    def _head(self, channel: str) -> bytes:
        if len(self._heads) >= HEADS_KEPT:
            self._heads.clear()
        fixed = ("EVALSHA", self._sha, 2, self._stream_key(channel), self._epoch_key(channel))
        head = b"*%d\r\n%b" % (_ARGUMENTS, _bulk_strings((*fixed, channel)))
        self._heads[channel] = head
        return head


def _bulk_strings(values: tuple[Any, ...]) -> bytes:
    """``values`` as the bulk strings of a command (hiredis's packing, without the
    array header): parts of a command packed ahead of it."""
    packed: bytes = hiredis.pack_command(values)
    return packed[packed.index(b"\r\n") + 2 :]
