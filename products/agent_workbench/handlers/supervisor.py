"""The supervisor's live view: the team, the queue, every active chat; forced takeover.

The view is one snapshot (``overview``) and then the events already on the bus: the
supervisor's stream follows the broadcast channel (presence, queue, left messages) and
every agent's channel (assigned, status changes, messages and notes of the chats they
hold), so nothing is polled and no event is published twice for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infrastructure.auth.passwords import agent_accounts
from infrastructure.config import Settings
from infrastructure.desk.service import DeskService
from infrastructure.events import Target
from infrastructure.sessions import Session
from infrastructure.web.models import SessionPublic


def watched_agents(settings: Settings) -> list[str]:
    """Whose channels a supervisor follows: every account that can sign in (a fixed list
    for the process's life, so a stream's resume cursor stays valid across reconnects)."""
    return sorted(set(agent_accounts(settings)) | set(settings.SUPERVISORS))


def supervisor_targets(settings: Settings) -> list[Target]:
    return [Target.broadcast(), *(Target.agent(a) for a in watched_agents(settings))]


def chat_view(session: Session) -> dict[str, Any]:
    """An active chat as the supervisor's list shows it."""
    public = SessionPublic.of(session).model_dump(mode="json")
    last = session.last_activity_at
    public["last_activity_at"] = last.isoformat() if last else None
    return public


async def overview(desk: DeskService) -> dict[str, Any]:
    """Every agent (presence, chats, capacity, supervisor or not), the queue (each with its
    wait so far) and every active chat (its holder, its last activity)."""
    known = await desk.desk.agents(watched_agents(desk.settings))
    supervisors = set(desk.settings.SUPERVISORS)
    queue = await desk.store.queue()
    chats = await desk.desk.active_chats()
    return {
        "at": datetime.now(UTC).isoformat(),
        "agents": [
            {
                "agent_id": a.agent_id,
                "status": str(a.status),
                "chats": a.chats,
                "capacity": a.capacity,
                "supervisor": a.agent_id in supervisors,
            }
            for a in known
        ],
        "queue": [
            SessionPublic.of(s, place).model_dump(mode="json")
            for place, s in enumerate(queue, start=1)
        ],
        "chats": [chat_view(s) for s in chats],
    }


async def take_over(
    desk: DeskService, session_name: str, supervisor: str, expected_holder: str | None
) -> Session:
    """The supervisor takes the chat from its holder (see ``DeskService.take_over``)."""
    return await desk.take_over(session_name, supervisor, expected_holder or "")
