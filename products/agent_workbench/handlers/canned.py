"""The team's canned replies: listed for the reply box's ``/`` picker, kept by agents."""

from __future__ import annotations

from infrastructure.record import canned
from infrastructure.record.canned import CannedReply
from infrastructure.record.service import Record, now_ms


async def list_replies(record: Record, prefix: str) -> list[CannedReply]:
    return await canned.list_replies(record.require_ready(), prefix)


async def create(record: Record, shortcut: str, content: str, agent_id: str) -> CannedReply:
    return await canned.create(record.require_ready(), shortcut, content, agent_id, now_ms())


async def change(record: Record, reply_id: int, shortcut: str, content: str) -> CannedReply:
    return await canned.change(record.require_ready(), reply_id, shortcut, content, now_ms())


async def remove(record: Record, reply_id: int) -> None:
    await canned.remove(record.require_ready(), reply_id)
