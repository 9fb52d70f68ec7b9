"""Targets, channels and the event envelope: the vocabulary of the SSE bus.

A *target* names who an event is for: a session (``"s1"`` or ``"session:s1"``),
an agent (``"agent:a7"``) or every agent (``"broadcast"``). A *channel* is the
Redis name of a target: ``{REDIS_SSE_CHANNEL_PREFIX}session:s1``. Names are
checked here, once, so that nothing a user typed ever becomes a glob pattern or
another channel's name.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

NAME_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
_NAME_RE: Final = re.compile(NAME_PATTERN)


class TargetKind(StrEnum):
    SESSION = "session"
    AGENT = "agent"
    BROADCAST = "broadcast"


class EventType(StrEnum):
    STATUS_CHANGE = "status_change"
    NEW_MESSAGE = "new_message"
    TRANSFER_REQUEST = "transfer_request"
    NOTIFICATION = "notification"
    #: Sent by the server to a resuming client whose position is no longer in history.
    RESET = "reset"


#: The members read on every publish and stream, as plain names: on Python 3.11 a
#: member read as ``TargetKind.X`` takes the slow attribute path of a class whose
#: metaclass has ``__getattr__`` (``EnumType``), measurably slower (bench/README.md).
SESSION_KIND: Final = TargetKind.SESSION
AGENT_KIND: Final = TargetKind.AGENT
BROADCAST_KIND: Final = TargetKind.BROADCAST


class InvalidTarget(ValueError):
    """A target or name outside ``^[A-Za-z0-9_-]{1,64}$``."""


def is_valid_name(name: str) -> bool:
    return _NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise InvalidTarget(f"invalid name {name!r}: must match {NAME_PATTERN}")
    return name


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    name: str = ""

    @classmethod
    def session(cls, session_name: str) -> Target:
        return _named_target(SESSION_KIND, session_name)

    @classmethod
    def agent(cls, agent_id: str) -> Target:
        return _named_target(AGENT_KIND, agent_id)

    @classmethod
    def broadcast(cls) -> Target:
        return cls(BROADCAST_KIND)

    @classmethod
    def parse(cls, target: str | Target) -> Target:
        """``"s1"`` and ``"session:s1"`` are a session, ``"agent:a1"`` an agent,
        ``"broadcast"`` every agent. The bare session name is the seed's calling
        convention (``enqueue_sse_message(session_name, ...)``)."""
        if isinstance(target, Target):
            return target
        if target == BROADCAST_KIND:
            return cls.broadcast()
        kind, sep, name = target.partition(":")
        if not sep:
            return cls.session(target)
        if kind == SESSION_KIND:
            return cls.session(name)
        if kind == AGENT_KIND:
            return cls.agent(name)
        raise InvalidTarget(
            f"invalid target {target!r}: use a session name, 'agent:<id>' or 'broadcast'"
        )

    def channel(self, prefix: str) -> str:
        """The Redis channel. ``{...}`` is a Redis Cluster hash tag: the channel, its
        history stream and its epoch key land on one shard."""
        if self.kind is BROADCAST_KIND:
            return f"{prefix}broadcast"
        return f"{prefix}{self.kind}:{self.name}"

    def __str__(self) -> str:
        return str(self.kind) if self.kind is BROADCAST_KIND else f"{self.kind}:{self.name}"


@functools.lru_cache(maxsize=4096)
def _named_target(kind: TargetKind, name: str) -> Target:
    """A session's or an agent's target, checked once and kept: every publish and every
    stream opened names one, and the name check and a frozen dataclass's ``__init__``
    cost 700 ns where a cache hit costs 70. A bad name raises, and is not kept."""
    return Target(kind, check_name(name))


def build_envelope(
    event_type: str, payload: dict[str, Any], source: str, timestamp: float | None = None
) -> dict[str, Any]:
    """The envelope of the seed, without its ``id`` (the bus assigns it on publish)."""
    return {
        "type": str(event_type),
        "payload": payload,
        "timestamp": int(time.time() if timestamp is None else timestamp),
        "source": source,
    }


class InvalidPayload(ValueError):
    """A payload JSON cannot carry faithfully (an integer beyond 64 bits, a lone
    surrogate in a string): a 422, never a 500."""


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError as exc:
        raise InvalidPayload(f"payload cannot be published: {exc}") from None


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
