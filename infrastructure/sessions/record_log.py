"""The record stream: every change of every session, in the order Redis accepted it.

Each session script (``*.lua`` beside this module) that changes a session also appends
one entry to ``{REDIS_SSE_CHANNEL_PREFIX}store:record`` in the same script, so nothing
accepted is missing from it; the archiver (``infrastructure/record/archiver.py``) copies
it into SQL through a consumer group. One stream for all sessions: a consumer group per
transcript stream would not scale to many sessions.

Entry fields: ``kind``, ``session``, ``ts`` (epoch ms), and per kind:

* ``session_created``: nothing more;
* ``status``: ``status``, ``previous``, ``agent_id`` (the holder after the move when it
  is ``agent_active``, else the agent who held it before: ``''`` for none), ``reason``;
* ``message``: ``message_id`` (the transcript stream id), ``sender``, ``sender_id``,
  ``content``, and ``attachment`` (JSON: id, filename, content_type, size, thumbnail) for
  a file's message;
* ``rating``: ``score``, ``comment``;
* ``note``: ``note_id`` (its id in the session's notes stream), ``agent_id``, ``content``.

In memory mode :class:`RecordLog` is the stream's twin: the in-memory session store
appends to it and the archiver reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from infrastructure.sessions.models import ChatMessage, Note, Session

RECORD_KEY_SUFFIX: Final = "record"

KIND_SESSION_CREATED: Final = "session_created"
KIND_STATUS: Final = "status"
KIND_MESSAGE: Final = "message"
KIND_RATING: Final = "rating"
#: An agent's internal note: never on the customer's channel, transcript or export.
KIND_NOTE: Final = "note"
KINDS: Final = frozenset({KIND_SESSION_CREATED, KIND_STATUS, KIND_MESSAGE, KIND_RATING, KIND_NOTE})


#: On a Redis Cluster, the hash tag of every key the desk's scripts touch together.
DESK_TAG: Final = "{desk}"


def store_prefix(channel_prefix: str, clustered: bool = False) -> str:
    """Where the session store's and the desk's keys live: ``sse:store:`` by default.

    On a Redis Cluster, ``sse:{desk}:store:``: one hash tag, so one slot, for every key a
    desk script touches at once (a session's hash and transcript, the queue, ``held``,
    ``load``, the agents, the waits and the record stream). Redis runs a script only
    when its keys share a slot, and a move must change the session, the queue and the
    record in one step. The bus's Streams and shard channels, where the event volume
    is, spread over every shard by their own tags (README, "Scaling Redis")."""
    return f"{channel_prefix}{DESK_TAG}:store:" if clustered else f"{channel_prefix}store:"


def record_key(channel_prefix: str, clustered: bool = False) -> str:
    """``sse:store:record`` by default (beside the session store's keys)."""
    return f"{store_prefix(channel_prefix, clustered)}{RECORD_KEY_SUFFIX}"


@dataclass(frozen=True, slots=True)
class RecordEntry:
    #: The record stream id (``<ms>-<seq>``): the archiver's idempotency key.
    id: str
    kind: str
    session: str
    ts: int
    fields: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @classmethod
    def from_stream(cls, entry_id: str, raw: Mapping[str, str]) -> RecordEntry:
        """An entry as Redis returns it (decoded). Raises ``ValueError`` for one the
        archiver cannot use (it is acknowledged and logged, never retried forever)."""
        kind, session, ts = raw.get("kind", ""), raw.get("session", ""), raw.get("ts", "")
        if not kind or not session or not ts.lstrip("-").isdigit():
            raise ValueError(f"record entry {entry_id} lacks kind/session/ts: {dict(raw)!r}")
        rest = {k: v for k, v in raw.items() if k not in ("kind", "session", "ts")}
        return cls(entry_id, kind, session, int(ts), rest)


class RecordLog:
    """The in-memory twin of the record stream (one process, memory mode).

    Entries wait until :meth:`ack`; :meth:`read` hands out what is not yet
    acknowledged, from the oldest, so an archiver that fails to commit reads the same
    entries again (the consumer group's pending list, in one process).
    """

    def __init__(self, maxlen: int = 1_000_000) -> None:
        self._entries: dict[str, RecordEntry] = {}
        self._maxlen = maxlen
        self._last: tuple[int, int] = (0, -1)
        self._changed = asyncio.Event()
        #: Entries dropped unarchived because the log was full.
        self.dropped = 0

    def append(self, kind: str, session: str, ts: int, **fields: str) -> RecordEntry:
        last_ms, last_seq = self._last
        ms, seq = (ts, 0) if ts > last_ms else (last_ms, last_seq + 1)
        self._last = (ms, seq)
        entry = RecordEntry(f"{ms}-{seq}", kind, session, ts, fields)
        self._entries[entry.id] = entry
        while len(self._entries) > self._maxlen:
            del self._entries[next(iter(self._entries))]
            self.dropped += 1
        self._changed.set()
        return entry

    # --- the entries the in-memory store appends: the Lua scripts' record lines, once ---

    def moved(self, now: int, before: Session, after: Session, reason: str) -> RecordEntry:
        """A status change (``record`` in lib.lua): ``agent_id`` is the holder after the
        move, or the one who held it before when nobody holds it now."""
        return self.append(
            KIND_STATUS,
            after.session_name,
            now,
            status=str(after.status),
            previous=str(before.status),
            agent_id=after.agent_id or before.agent_id or "",
            reason=reason,
        )

    def message(self, message: ChatMessage, ts: int) -> RecordEntry:
        """A message of the transcript (as append_message.lua)."""
        extra = {"attachment": message.attachment.model_dump_json()} if message.attachment else {}
        return self.append(
            KIND_MESSAGE,
            message.session_name,
            ts,
            message_id=message.id,
            sender=str(message.sender),
            sender_id=message.sender_id or "",
            content=message.content,
            **extra,
        )

    def note(self, note: Note, ts: int) -> RecordEntry:
        """An agent's internal note (as append_note.lua)."""
        return self.append(
            KIND_NOTE,
            note.session_name,
            ts,
            note_id=note.id,
            agent_id=note.agent_id,
            content=note.content,
        )

    def read(self, count: int) -> list[RecordEntry]:
        out: list[RecordEntry] = []
        for entry in self._entries.values():
            if len(out) >= count:
                break
            out.append(entry)
        return out

    def ack(self, ids: list[str]) -> None:
        for entry_id in ids:
            self._entries.pop(entry_id, None)

    def forget(self, session: str) -> int:
        """Drop the unarchived entries of one session (a customer's data erased)."""
        doomed = [i for i, e in self._entries.items() if e.session == session]
        self.ack(doomed)
        return len(doomed)

    def __len__(self) -> int:
        return len(self._entries)

    def oldest_ts(self) -> int | None:
        for entry in self._entries.values():
            return entry.ts
        return None

    async def wait(self, seconds: float) -> None:
        """Until something is appended, or ``seconds``."""
        if self._entries:
            return
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), seconds)
        except TimeoutError:
            return
