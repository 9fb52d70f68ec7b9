"""``Last-Event-ID``: one ``<epoch>.<ms>-<seq>`` token per channel, comma-separated."""

from __future__ import annotations

import re
from collections.abc import Sequence

# [0-9], not \d: \d also matches other scripts' digits.
_TOKEN_RE = re.compile(r"([0-9a-z]{1,16})\.([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
MAX_CURSOR_LENGTH = 256
_MAX_ID_PART = 2**64 - 1


class InvalidCursor(ValueError):
    """A ``Last-Event-ID`` that this service did not issue (a 400)."""


def parse_cursor(value: str, channels: int) -> list[tuple[str, str]]:
    """``"k3j2.1703246400000-0,0.0-0"`` -> ``[("k3j2", "1703246400000-0"), ("0", "0-0")]``.

    The number of tokens must be the stream's number of channels.
    """
    if len(value) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("Last-Event-ID is too long")
    tokens = value.split(",")
    if len(tokens) != channels:
        raise InvalidCursor(
            f"Last-Event-ID has {len(tokens)} position(s); this stream has {channels} channel(s)"
        )
    cursor: list[tuple[str, str]] = []
    for token in tokens:
        match = _TOKEN_RE.fullmatch(token)
        # The value is not echoed: the answer says what is wrong, not what was sent.
        if match is None:
            raise InvalidCursor("malformed Last-Event-ID")
        epoch, ms, seq = match.groups()
        if int(ms) > _MAX_ID_PART or int(seq) > _MAX_ID_PART:
            raise InvalidCursor("malformed Last-Event-ID: not a Redis Stream id")
        cursor.append((epoch, f"{int(ms)}-{int(seq)}"))
    return cursor


def format_cursor(cursor: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{epoch}.{event_id}" for epoch, event_id in cursor)
