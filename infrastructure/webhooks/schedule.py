"""When a delivery may be attempted: the backoff and the ordering rule, with no I/O.

**In order per session per hook.** Every delivery is one entry of the queue Stream, and
for each (hook, session) pair Redis keeps a list of its entries' ids, appended in the same
atomic step as the entry (``order:<hook>:<session>``). Only the list's *head* may be sent;
its success (or its giving up after ``WEBHOOK_MAX_AGE_SECONDS``) removes it, and the next
becomes the head. So a later event of a session waits while an earlier one to the same hook
is being retried, whichever replica holds either, while other sessions and other hooks go
on. A delivery that is not the head stays pending in its consumer, unsent, and is looked at
again on the next round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def backoff(attempts: int, minimum: float, maximum: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: ``minimum`` doubled
    each time, at most ``maximum`` (5 s, 10 s, 20 s, ... up to an hour by default)."""
    if attempts <= 0:
        return 0.0
    return float(min(maximum, minimum * 2 ** min(attempts - 1, 62)))


@dataclass(slots=True)
class Delivery:
    """One entry of the queue this consumer holds."""

    entry_id: str
    hook_id: str
    session_name: str
    event_type: str
    event_id: str
    body: bytes
    created_ms: int
    attempts: int = 0
    #: Monotonic time before which it is not tried (its backoff).
    next_at: float = 0.0
    in_flight: bool = field(default=False)

    @property
    def order_key(self) -> tuple[str, str]:
        return (self.hook_id, self.session_name)


def may_send(delivery: Delivery, head: str | None, now: float) -> bool:
    """Due, not already on its way, and first of its (hook, session) in the queue."""
    return not delivery.in_flight and delivery.next_at <= now and head == delivery.entry_id


def due(
    held: Iterable[Delivery], heads: Mapping[tuple[str, str], str | None], now: float
) -> list[Delivery]:
    """What to send now, oldest first: at most one per (hook, session)."""
    return [
        d
        for d in sorted(held, key=lambda d: _stream_order(d.entry_id))
        if may_send(d, heads.get(d.order_key), now)
    ]


def expired(delivery: Delivery, now_ms: int, max_age_seconds: float) -> bool:
    """Retried long enough: given up (and the session's next event may go)."""
    return now_ms - delivery.created_ms >= max_age_seconds * 1000


def _stream_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0))
