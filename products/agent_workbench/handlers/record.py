"""Agents reading the record: the conversation list with search, and the summary report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from infrastructure.record import queries, reports
from infrastructure.record.service import Record
from infrastructure.web.record_models import ConversationPage, ConversationSummary, ReportSummary
from infrastructure.web.record_routes import check_period, to_ms

#: The report's period when none is given, and the longest one asked for.
DEFAULT_REPORT_DAYS: Final = 7
MAX_REPORT_DAYS: Final = 366


class PeriodTooLong(ValueError):
    pass


async def conversations(
    record: Record,
    *,
    q: str | None,
    agent_id: str | None,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> ConversationPage:
    from_ms, to_ms_ = check_period(start, end)
    page = await queries.search_conversations(
        record.require_ready(),
        queries.ConversationFilter(
            q=q.strip() or None if q else None,
            agent_id=agent_id,
            status=status,
            from_ms=from_ms,
            to_ms=to_ms_,
            cursor=cursor,
            limit=limit,
        ),
    )
    return ConversationPage(
        items=[ConversationSummary.of(i) for i in page["items"]], next_cursor=page["next_cursor"]
    )


async def summary(record: Record, start: datetime | None, end: datetime | None) -> ReportSummary:
    now = datetime.now(UTC)
    end = end or now
    start = start or end - timedelta(days=DEFAULT_REPORT_DAYS)
    check_period(start, end)
    from_ms, to_ms_ = to_ms(start), to_ms(end)
    if to_ms_ - from_ms > MAX_REPORT_DAYS * 86_400_000:
        raise PeriodTooLong(f"a report covers at most {MAX_REPORT_DAYS} days")
    return ReportSummary.of(await reports.summary(record.require_ready(), from_ms, to_ms_))
