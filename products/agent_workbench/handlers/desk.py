"""An agent at the desk: its presence, its chats after a reload, leaving."""

from __future__ import annotations

from infrastructure.desk.models import AgentPresence, AgentStatus
from infrastructure.desk.service import DeskService
from infrastructure.web.models import SessionPublic


async def my_sessions(desk: DeskService, agent_id: str) -> list[SessionPublic]:
    """What the agent holds, with unread counts: its page asks on every load and after
    every reconnect, so a new tab or browser shows the same chats."""
    return [SessionPublic.of(s) for s in await desk.store.held_by(agent_id)]


async def set_status(desk: DeskService, agent_id: str, status: AgentStatus) -> AgentPresence:
    await desk.set_status(agent_id, status)
    # (agents() lists every agent seen as well as those asked for.)
    listed = await desk.desk.agents([agent_id])
    return next(a for a in listed if a.agent_id == agent_id)


async def signed_in(desk: DeskService, agent_id: str) -> None:
    """Signing in says "online" (signing out may have said "offline")."""
    await desk.set_status(agent_id, AgentStatus.ONLINE)


async def sign_out(desk: DeskService, agent_id: str, hand_back: bool) -> list[str]:
    """Offline at once; its chats back to the queue's front unless it keeps them (then the
    grace period applies, as for a lost connection)."""
    await desk.set_status(agent_id, AgentStatus.OFFLINE)
    return await desk.hand_back(agent_id) if hand_back else []
