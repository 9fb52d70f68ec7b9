"""The record's routes both services serve: a transcript from the record (a customer sees
its own after Redis has forgotten it), and a customer's data exported or erased."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from infrastructure.auth.dependencies import ServiceCaller, SessionAccess, SessionNamePath
from infrastructure.events import NAME_PATTERN, Target
from infrastructure.record import privacy, queries
from infrastructure.record.service import Record, now_ms
from infrastructure.sessions.models import datetime_to_ms
from infrastructure.web.deps import Bus, SessionStore
from infrastructure.web.errors import unprocessable
from infrastructure.web.record_models import CustomerErased, CustomerExport, Transcript

router = APIRouter()


async def get_record(request: Request) -> Record:
    record: Record = request.app.state.record
    return record


RecordDep = Annotated[Record, Depends(get_record)]
#: A customer is identified by its session's name (see ``infrastructure/record/privacy.py``).
CustomerIdPath = Annotated[str, Path(pattern=NAME_PATTERN, description="the session name")]


def to_ms(value: datetime) -> int:
    """Epoch ms of a query's time; one without a zone is UTC."""
    return datetime_to_ms(value if value.tzinfo else value.replace(tzinfo=UTC))


def check_period(start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
    from_ms = None if start is None else to_ms(start)
    to_ms_ = None if end is None else to_ms(end)
    if from_ms is not None and to_ms_ is not None and from_ms > to_ms_:
        raise unprocessable("from is after to", "query", "from")
    return from_ms, to_ms_


@router.get(
    "/api/conversations/{session_name}",
    response_model=Transcript,
    tags=["record"],
    summary="A whole conversation from the record (also after Redis has forgotten it)",
    responses={404: {"description": "the record has nothing of this session"}},
)
async def recorded_conversation(
    session_name: SessionNamePath, _: SessionAccess, record: RecordDep
) -> Transcript:
    found = await queries.transcript(record.require_ready(), session_name)
    if found is None:
        raise HTTPException(404, f"the record has no conversation {session_name!r}")
    return Transcript.of(found)


@router.get(
    "/api/customers/{customer_id}/export",
    response_model=CustomerExport,
    tags=["record"],
    summary="Everything kept of one customer, in SQL and in Redis (service token)",
)
async def export_customer(
    customer_id: CustomerIdPath, _: ServiceCaller, record: RecordDep, store: SessionStore
) -> CustomerExport:
    found = await queries.transcript(record.require_ready(), customer_id)
    return CustomerExport(
        customer_id=customer_id,
        record=Transcript.of(found) if found else None,
        live=await privacy.export_live(store, customer_id),
    )


@router.delete(
    "/api/customers/{customer_id}",
    response_model=CustomerErased,
    tags=["record"],
    summary="Erase everything kept of one customer, in SQL and in Redis (service token)",
)
async def erase_customer(
    customer_id: CustomerIdPath,
    _: ServiceCaller,
    record: RecordDep,
    store: SessionStore,
    bus: Bus,
    request: Request,
) -> CustomerErased:
    engine = record.require_ready()
    prefix = request.app.state.settings.REDIS_SSE_CHANNEL_PREFIX
    manager = bus.manager
    channel_keys: list[str] = []
    if manager is not None:
        channel = Target.session(customer_id).channel(prefix)
        channel_keys = [manager.keys.stream(channel), manager.keys.epoch(channel)]
    live = await privacy.erase_live(
        manager.redis if manager else None,
        store,
        prefix,
        customer_id,
        channel_keys,
        clustered=request.app.state.settings.redis_clustered,
    )
    recorded = await privacy.erase_record(engine, customer_id, now_ms())
    return CustomerErased(customer_id=customer_id, record=recorded, live=live)
