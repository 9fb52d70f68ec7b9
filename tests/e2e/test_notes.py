"""Internal notes: agents read them; a customer never does, by any way it has (its stream,
its transcript live and in the record, its export)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.deployment import Deployment
from tests.support.processes import async_wait_until
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e

SECRET = "customer seems angry, offer 20% 折扣"


async def test_a_note_never_reaches_the_customer(deployment: Deployment) -> None:
    d = deployment
    hana = d.agent_headers("hana")
    async with httpx.AsyncClient(timeout=10) as http:
        created = (await http.post(f"{d.chatbot}/api/sessions")).json()
        name, token = created["session_name"], created["token"]
        customer = {"Authorization": f"Bearer {token}"}
        stream = await SseStream(f"{d.chatbot}/api/sessions/{name}/events?token={token}").start()
        agent_stream = await SseStream(
            f"{d.workbench}/api/agents/hana/events", headers=hana
        ).start()
        try:
            await http.post(
                f"{d.chatbot}/api/manual/escalate", json={"session_name": name}, headers=customer
            )
            await http.post(
                f"{d.workbench}/api/sessions/{name}/takeover",
                json={"agent_id": "hana"},
                headers=hana,
            )
            noted = await http.post(
                f"{d.workbench}/api/sessions/{name}/notes", json={"content": SECRET}, headers=hana
            )
            assert noted.status_code == 201, noted.text
            await http.post(
                f"{d.workbench}/api/sessions/{name}/messages",
                json={"agent_id": "hana", "content": "after the note"},
                headers=hana,
            )
            # Agents hear it; the customer's stream has the message after it, not the note.
            await agent_stream.wait_type("note", session_name=name, content=SECRET)
            await stream.wait_type("new_message", content="after the note")
            assert all(SECRET not in e.data for e in stream.events)
        finally:
            await stream.close()
            await agent_stream.close()

        notes = (await http.get(f"{d.workbench}/api/sessions/{name}/notes", headers=hana)).json()
        assert [(n["agent_id"], n["content"]) for n in notes] == [("hana", SECRET)]
        # A customer cannot list notes (agents' route, agent token only).
        refused = await http.get(f"{d.workbench}/api/sessions/{name}/notes", headers=customer)
        assert refused.status_code == 403
        live = await http.get(f"{d.chatbot}/api/sessions/{name}/messages", headers=customer)
        assert SECRET not in live.text
        assert "after the note" in live.text

        # The record, once the archiver has the message written after the note.
        async def archived() -> httpx.Response | None:
            recorded = await http.get(f"{d.chatbot}/api/conversations/{name}", headers=customer)
            found = recorded.status_code == 200 and "after the note" in recorded.text
            return recorded if found else None

        recorded = await async_wait_until(archived, timeout=20, description="the record has it")
        assert isinstance(recorded, httpx.Response)
        assert SECRET not in recorded.text
        exported = await http.get(
            f"{d.chatbot}/api/customers/{name}/export", headers=d.service_headers()
        )
        assert exported.status_code == 200
        assert SECRET not in exported.text
        assert "after the note" in exported.text

        # Bad input: empty, and a session that does not exist.
        empty = await http.post(
            f"{d.workbench}/api/sessions/{name}/notes", json={"content": ""}, headers=hana
        )
        assert empty.status_code == 422
        missing = await http.post(
            f"{d.workbench}/api/sessions/nope/notes", json={"content": "x"}, headers=hana
        )
        assert missing.status_code == 404
