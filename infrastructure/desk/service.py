"""The desk's use cases, shared by both services: what follows a change of the queue or of
presence, and what each sweep found, told to the people concerned.

* an agent's presence changed: ``presence`` on the broadcast channel;
* chats assigned: ``status_change`` to the customer ("agent X joined"), ``assigned`` on the
  agent's channel, and everyone behind moves up (``queue_position``);
* a gone agent's chats back in the queue: the customer is told in the transcript ("your
  agent left; you are number N in the queue"), the agent's page hears it lost them;
* a gone customer: ``abandoned`` to the agents; an idle chat: closed, with a notice.
"""

from __future__ import annotations

from collections.abc import Sequence

from infrastructure.bootstrap.sse import SseBus
from infrastructure.config import Settings
from infrastructure.events import Target
from infrastructure.sessions import ChatMessage, SenderRole, Session, SessionStatus, SessionStore
from infrastructure.sessions.notify import (
    publish_message,
    publish_queue_moved,
    publish_status,
    queue_info,
    session_payload,
)
from infrastructure.webhooks.emit import emit_webhook

from .base import Desk
from .models import AgentPresence, AgentStatus, Assignment, PresenceChange, SweepResult


class DeskService:
    def __init__(
        self, bus: SseBus, store: SessionStore, desk: Desk, settings: Settings, source: str
    ) -> None:
        self.bus = bus
        self.store = store
        self.desk = desk
        self.settings = settings
        self.source = source

    @property
    def auto(self) -> bool:
        return self.settings.ASSIGNMENT_MODE == "auto"

    # --- what callers ask ---------------------------------------------------------

    async def agents(self) -> list[AgentPresence]:
        return await self.desk.agents(sorted(self.settings.AGENTS))

    async def queue_of(self, session_name: str) -> dict[str, object]:
        session = await self.store.get(session_name)
        position = await self.store.queue_position(session_name)
        waits = await self.store.recent_waits() if position is not None else []
        return queue_info(session, position, waits)

    async def set_status(self, agent_id: str, status: AgentStatus) -> None:
        await self.presence_changed(await self.desk.set_status(agent_id, status))

    async def queue_changed(self) -> None:
        """After a chat joined or left the queue, or an agent freed a slot: assign (in
        ``auto``) and tell everyone waiting where they are."""
        assigned = await self.desk.assign() if self.auto else []
        await self._announce(assigned)
        await publish_queue_moved(self.bus, self.store, self.source)

    async def presence_changed(self, changes: Sequence[PresenceChange]) -> None:
        if not changes:
            return
        listed = {a.agent_id: a for a in await self.desk.agents([c.agent_id for c in changes])}
        for change in changes:
            agent = listed.get(change.agent_id)
            await self._publish_presence(
                change.agent_id, change.status, agent.chats if agent else 0
            )
        if self.auto and any(c.status is AgentStatus.ONLINE for c in changes):
            await self.queue_changed()

    async def _publish_presence(self, agent_id: str, status: AgentStatus, chats: int) -> None:
        payload = {
            "agent_id": agent_id,
            "status": str(status),
            "chats": chats,
            "capacity": self.settings.AGENT_MAX_CHATS,
        }
        await self.bus.publish(Target.broadcast(), "presence", payload, self.source)

    async def loads_changed(self, agent_ids: Sequence[str]) -> None:
        """A chat moved between these agents (a transfer, a takeover): everyone's team list
        hears their new loads (a ``presence`` event each, status unchanged)."""
        for agent in await self.desk.agents(list(agent_ids)):
            if agent.agent_id in agent_ids:
                await self._publish_presence(agent.agent_id, agent.status, agent.chats)

    async def transfer(
        self, session_name: str, from_agent: str, to_agent: str, note: str = ""
    ) -> Session:
        """The holder hands the chat to a colleague who is online and has room: the customer
        sees who joined, the colleague gets it (with the note), the holder's page drops it."""
        session: Session = await self.desk.transfer(session_name, from_agent, to_agent, note)
        # (The note is for agents: a webhook carries who handed the chat to whom.)
        await self._handed_over(
            session, from_agent, to_agent, {"transferred_from": from_agent, "note": note or None}
        )
        return session

    async def take_over(
        self, session_name: str, supervisor: str, expected_holder: str = ""
    ) -> Session:
        """A supervisor takes a chat from the agent holding it: that agent's page drops it
        with a notice (``taken_over``), the customer sees who joined, the supervisor gets it
        (``assigned``), webhooks get a ``transferred`` with ``"takeover": true``."""
        session, holder = await self.desk.take_over(session_name, supervisor, expected_holder)
        # First the notice, then the status: the page drops the chat saying why.
        await self.bus.publish(
            Target.agent(holder),
            "taken_over",
            {**session_payload(session), "by": supervisor},
            self.source,
        )
        await self._handed_over(
            session, holder, supervisor, {"taken_over_from": holder}, {"takeover": True}
        )
        return session

    async def _handed_over(
        self,
        session: Session,
        from_agent: str,
        to_agent: str,
        assigned: dict[str, object],
        webhook: dict[str, object] | None = None,
    ) -> None:
        """What a chat moving from one agent to another tells: the customer (who joined),
        the new holder (``assigned``, with ``assigned``'s fields), webhooks (``transferred``)
        and every team list (both agents' loads)."""
        await publish_status(
            self.bus,
            self.store,
            session,
            self.source,
            previous=SessionStatus.AGENT_ACTIVE,
            previous_agent=from_agent,
        )
        payload = session_payload(session)
        await self.bus.publish(
            Target.agent(to_agent), "assigned", {**payload, **assigned}, self.source
        )
        await emit_webhook(
            self.bus,
            "transferred",
            session.session_name,
            {**payload, "from_agent_id": from_agent, "to_agent_id": to_agent, **(webhook or {})},
        )
        await self.loads_changed([from_agent, to_agent])

    async def to_queue(self, session_name: str, agent_id: str) -> Session:
        """The holder hands one chat back to the queue's front (another agent takes it)."""
        await self.store.requeue(session_name, agent_id)
        await self._tell_returned([Assignment(session_name, agent_id)], "Your agent handed you on.")
        await self.queue_changed()
        return await self.store.get(session_name)

    async def hand_back(self, agent_id: str) -> list[str]:
        """An agent leaving hands its chats back: each to the front of the queue."""
        returned: list[Assignment] = []
        # Each to the front, the last first: they keep their order ahead of the queue.
        for session in reversed(await self.store.held_by(agent_id)):
            await self.store.requeue(session.session_name, agent_id)
            returned.insert(0, Assignment(session.session_name, agent_id))
        await self._tell_returned(returned, "Your agent has left.")
        await self.queue_changed()
        return [r.session_name for r in returned]

    # --- the periodic sweep ---------------------------------------------------------

    async def tick(self) -> None:
        result = await self.desk.sweep()
        await self.presence_changed(result.presence)
        await self._after_sweep(result)
        if self.auto or result.queue_moved:
            await self.queue_changed()

    async def _after_sweep(self, result: SweepResult) -> None:
        await self._tell_returned(result.returned, "Your agent is no longer available.")
        for name in result.abandoned:
            session = await self.store.get(name)
            await publish_status(
                self.bus, self.store, session, self.source, previous=SessionStatus.WAITING_AGENT
            )
            await self.bus.publish(
                Target.broadcast(), "abandoned", session_payload(session), self.source
            )
        minutes = round(self.settings.SESSION_IDLE_CLOSE_SECONDS / 60)
        for closed in result.idle_closed:
            session = await self._agent_gone(
                closed, f"This chat was closed after {minutes} minutes without a message."
            )
            await emit_webhook(
                self.bus, "closed", session.session_name, {**session_payload(session), "by": "idle"}
            )

    # --- telling people ---------------------------------------------------------------

    async def _announce(self, assigned: Sequence[Assignment]) -> None:
        for assignment in assigned:
            session = await self.store.get(assignment.session_name)
            await publish_status(
                self.bus, self.store, session, self.source, previous=SessionStatus.WAITING_AGENT
            )
            await self.bus.publish(
                Target.agent(assignment.agent_id),
                "assigned",
                session_payload(session),
                self.source,
            )
            await emit_webhook(self.bus, "assigned", session.session_name, session_payload(session))

    async def _tell_returned(self, returned: Sequence[Assignment], why: str) -> None:
        for chat in returned:
            position = await self.store.queue_position(chat.session_name)
            place = f" You are number {position} in the queue." if position else ""
            await self._agent_gone(chat, f"{why}{place} Another agent will be with you shortly.")

    async def _agent_gone(self, chat: Assignment, text: str) -> Session:
        """A chat its agent no longer holds: the customer reads why in the transcript, both
        pages hear the new status."""
        await self._system_message(chat.session_name, text)
        session = await self.store.get(chat.session_name)
        await publish_status(
            self.bus,
            self.store,
            session,
            self.source,
            previous=SessionStatus.AGENT_ACTIVE,
            previous_agent=chat.agent_id,
        )
        return session

    async def _system_message(self, session_name: str, text: str) -> None:
        message = await self.store.append_message(
            ChatMessage(session_name=session_name, sender=SenderRole.SYSTEM, content=text)
        )
        await publish_message(self.bus, message, self.source)
