"""The summary report of a period: conversations, escalations, abandoned, wait before an
agent (median, p90), handle time (median), ratings; in total, per agent, per day.

Walked in Python over the status history of the sessions active in the period: the
definitions stay readable and the same on both databases.

* conversations: sessions created in the period (per agent: sessions it took over);
* escalations: moves to ``waiting_agent`` in the period;
* abandoned: moves out of ``waiting_agent`` to ``closed`` or ``abandoned`` (the customer
  left before an agent came);
* wait: from a move to ``waiting_agent`` to the next move, when that is ``agent_active``
  (per agent: the one who took it);
* handle time: from ``agent_active`` to the next move of that session;
* ratings: rated in the period (per agent: the agent the session was last with).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from . import schema

_LEFT_WAITING: Final = frozenset({"closed", "abandoned"})
_DAY_MS: Final = 86_400_000


@dataclass
class _Tally:
    conversations: set[str] = field(default_factory=set)
    escalations: int = 0
    abandoned: int = 0
    waits: list[float] = field(default_factory=list)
    handles: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        return {
            "conversations": len(self.conversations),
            "escalations": self.escalations,
            "abandoned": self.abandoned,
            "wait_median_seconds": _median(self.waits),
            "wait_p90_seconds": _percentile(self.waits, 90),
            "handle_median_seconds": _median(self.handles),
            "rating_average": round(statistics.fmean(self.ratings), 2) if self.ratings else None,
            "rating_count": len(self.ratings),
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _percentile(values: list[float], p: int) -> float | None:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


async def summary(engine: AsyncEngine, from_ms: int, to_ms: int) -> dict[str, Any]:
    s, sc = schema.sessions, schema.status_changes
    total = _Tally()
    agents: dict[str, _Tally] = defaultdict(_Tally)
    days: dict[str, _Tally] = defaultdict(_Tally)
    day = from_ms - from_ms % _DAY_MS
    while day <= to_ms and len(days) < 400:
        days[_day(day)] = _Tally()
        day += _DAY_MS

    def within(ms: int) -> bool:
        return from_ms <= ms <= to_ms

    async with engine.connect() as connection:
        created = await connection.execute(
            select(s.c.session_name, s.c.created_at).where(s.c.created_at.between(from_ms, to_ms))
        )
        for name, at in created.tuples():
            total.conversations.add(name)
            days[_day(at)].conversations.add(name)
        rated = await connection.execute(
            select(s.c.agent_id, s.c.rating_score)
            .where(s.c.rated_at.between(from_ms, to_ms))
            .where(s.c.rating_score.is_not(None))
        )
        for agent, score in rated.tuples():
            total.ratings.append(score)
            if agent:
                agents[agent].ratings.append(score)
        active = select(sc.c.session_name).where(sc.c.ts.between(from_ms, to_ms)).distinct()
        history = await connection.execute(
            select(sc.c.session_name, sc.c.ts, sc.c.status, sc.c.agent_id, sc.c.previous)
            .where(sc.c.session_name.in_(active))
            .order_by(sc.c.session_name, sc.c.position)
        )
        rows = list(history.tuples())

    for i, (name, ts, status, agent, previous) in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1][0] == name else None
        if status == "waiting_agent" and within(ts):
            total.escalations += 1
            days[_day(ts)].escalations += 1
            if nxt is not None and nxt[2] == "agent_active":
                waited = (nxt[1] - ts) / 1000
                total.waits.append(waited)
                if nxt[3]:
                    agents[nxt[3]].waits.append(waited)
        if status in _LEFT_WAITING and previous == "waiting_agent" and within(ts):
            total.abandoned += 1
            days[_day(ts)].abandoned += 1
        if status == "agent_active" and within(ts) and agent:
            agents[agent].conversations.add(name)
            if nxt is not None:
                handled = (nxt[1] - ts) / 1000
                total.handles.append(handled)
                agents[agent].handles.append(handled)

    return {
        "from": from_ms,
        "to": to_ms,
        "total": total.render(),
        "agents": [{"agent_id": a, **agents[a].render()} for a in sorted(agents)],
        "days": [
            {
                "date": d,
                "conversations": len(t.conversations),
                "escalations": t.escalations,
                "abandoned": t.abandoned,
            }
            for d, t in sorted(days.items())
        ],
    }
