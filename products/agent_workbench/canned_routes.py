"""HTTP wiring of the team's canned replies (agents only). The work is in handlers/canned.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from infrastructure.auth.dependencies import CurrentAgent
from infrastructure.record.canned import CannedReplyNotFound, ShortcutTaken
from infrastructure.web.record_routes import RecordDep
from products.agent_workbench.handlers import canned
from products.agent_workbench.schemas import CannedReplyCreate, CannedReplyPublic

router = APIRouter()

#: A canned reply's id: a positive 64-bit integer (larger is a 422, not a database error).
ReplyId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/api/canned-replies", response_model=list[CannedReplyPublic], tags=["canned"])
async def list_canned(
    _: CurrentAgent,
    record: RecordDep,
    q: Annotated[str, Query(max_length=32, pattern=r"^[a-z0-9_-]*$")] = "",
) -> list[CannedReplyPublic]:
    """The team's canned replies by shortcut; ``q`` keeps those whose shortcut starts so."""
    return [CannedReplyPublic(**asdict(r)) for r in await canned.list_replies(record, q)]


@router.post(
    "/api/canned-replies", status_code=201, response_model=CannedReplyPublic, tags=["canned"]
)
async def create_canned(
    body: CannedReplyCreate, principal: CurrentAgent, record: RecordDep
) -> CannedReplyPublic:
    try:
        reply = await canned.create(record, body.shortcut, body.content, principal.subject)
    except ShortcutTaken as exc:
        raise HTTPException(409, str(exc)) from None
    return CannedReplyPublic(**asdict(reply))


@router.put("/api/canned-replies/{reply_id}", response_model=CannedReplyPublic, tags=["canned"])
async def change_canned(
    reply_id: ReplyId, body: CannedReplyCreate, _: CurrentAgent, record: RecordDep
) -> CannedReplyPublic:
    try:
        reply = await canned.change(record, reply_id, body.shortcut, body.content)
    except ShortcutTaken as exc:
        raise HTTPException(409, str(exc)) from None
    except CannedReplyNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return CannedReplyPublic(**asdict(reply))


@router.delete("/api/canned-replies/{reply_id}", status_code=204, tags=["canned"])
async def delete_canned(reply_id: ReplyId, _: CurrentAgent, record: RecordDep) -> None:
    try:
        await canned.remove(record, reply_id)
    except CannedReplyNotFound as exc:
        raise HTTPException(404, str(exc)) from None
