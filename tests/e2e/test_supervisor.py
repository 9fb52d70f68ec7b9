"""The supervisor's API with both services as processes on a real Redis: the role from the
login, a 403 saying why for a plain agent on every supervisor endpoint, the overview, the
live stream (events another process published), a whisper, the forced takeover (its 409s,
what each side's stream hears, the webhook)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from infrastructure.auth.passwords import hash_password
from infrastructure.auth.tokens import Role, issue_token
from tests.support.deployment import Deployment, new_chat, start_deployment, stop_deployment
from tests.support.processes import wait_until
from tests.support.sse_client import SseStream
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

PASSWORDS = {"lead": secrets.token_urlsafe(12), "ann": secrets.token_urlsafe(12)}
HOOK_SECRET = "e2e-supervisor-hook-secret-0123"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().up()
    yield hook
    hook.down()


@pytest.fixture(scope="module")
def d(receiver: WebhookReceiver) -> Iterator[Deployment]:
    hooks = [{"url": receiver.url, "secret": HOOK_SECRET, "events": ["transferred"], "id": "crm"}]
    deployed = start_deployment(
        env={
            "AGENTS": json.dumps({a: hash_password(p) for a, p in PASSWORDS.items()}),
            "SUPERVISORS": "lead",
            "WEBHOOKS": json.dumps(hooks),
            "WEBHOOK_BACKOFF_MIN_SECONDS": "0.1",
        }
    )
    yield deployed
    stop_deployment(deployed)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def login(http: httpx.AsyncClient, d: Deployment, agent: str) -> dict[str, str]:
    answer = await http.post(
        f"{d.workbench}/api/agents/login", json={"agent_id": agent, "password": PASSWORDS[agent]}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


async def held_by(http: httpx.AsyncClient, d: Deployment, agent: str) -> tuple[str, dict[str, str]]:
    """A customer's chat (Mei), escalated and taken by ``agent``; its name and customer headers."""
    return await new_chat(http, d, agent, "Mei")


async def test_a_plain_agent_gets_a_403_saying_why_on_every_supervisor_endpoint(
    d: Deployment, http: httpx.AsyncClient
) -> None:
    ann = await login(http, d, "ann")
    for method, path in (
        ("GET", "/api/supervisor/overview"),
        ("GET", "/api/supervisor/events"),
        ("POST", "/api/supervisor/sessions/s1/takeover"),
    ):
        refused = await http.request(method, f"{d.workbench}{path}", headers=ann)
        assert refused.status_code == 403, (path, refused.text)
        assert "supervisor role is needed" in refused.json()["detail"]
        async with httpx.AsyncClient(timeout=10) as anonymous:  # (no login cookie)
            assert (await anonymous.request(method, f"{d.workbench}{path}")).status_code == 401
    # A token signed with the scope for an agent SUPERVISORS does not list: refused too.
    forged_scope = issue_token(d.settings, Role.AGENT, "ann", scopes=["supervisor"])
    refused = await http.get(
        f"{d.workbench}/api/supervisor/overview",
        headers={"Authorization": f"Bearer {forged_scope}"},
    )
    assert refused.status_code == 403


async def test_the_supervisor_sees_whispers_and_takes_over_live(
    d: Deployment, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    lead = await login(http, d, "lead")
    answer = await http.post(
        f"{d.workbench}/api/agents/login", json={"agent_id": "lead", "password": PASSWORDS["lead"]}
    )
    assert answer.json()["roles"] == ["supervisor"]
    view = await SseStream(f"{d.workbench}/api/supervisor/events", headers=lead).start()
    ann_stream = await SseStream(
        f"{d.workbench}/api/agents/ann/events", headers=d.agent_headers("ann")
    ).start()
    # It never resumes (the page takes a snapshot on every reconnect): a Last-Event-ID, even
    # one the bus would refuse, opens it afresh.
    stale = await SseStream(
        f"{d.workbench}/api/supervisor/events",
        headers={**lead, "Last-Event-ID": ",".join(["ab.1-2"] * 60)},
    ).start()
    await stale.close()
    try:
        name, customer = await held_by(http, d, "ann")
        # Live: the assignment the other service's escalation led to, on ann's channel.
        await view.wait_type("status_change", session_name=name, agent_id="ann")
        overview = (await http.get(f"{d.workbench}/api/supervisor/overview", headers=lead)).json()
        (chat,) = [c for c in overview["chats"] if c["session_name"] == name]
        assert (chat["agent_id"], chat["display_name"]) == ("ann", "Mei")
        assert chat["last_activity_at"]
        agents = {a["agent_id"]: a for a in overview["agents"]}
        assert agents["ann"]["chats"] >= 1
        assert agents["lead"]["supervisor"] is True
        team = (await http.get(f"{d.workbench}/api/agents", headers=d.agent_headers("ann"))).json()
        flags = {a["agent_id"]: a["supervisor"] for a in team}
        assert (flags["lead"], flags["ann"]) == (True, False)
        assert agents["ann"]["status"] == "online"

        # A customer message (published by the chatbot process) reaches the live view.
        sent = await http.post(
            f"{d.chatbot}/api/sessions/{name}/messages",
            json={"content": "Where is my parcel?"},
            headers=customer,
        )
        assert sent.status_code == 201
        await view.wait_type("new_message", session_name=name, content="Where is my parcel?")
        # A whisper: the holder hears it; the customer's stream never has it.
        customer_stream = await SseStream(
            f"{d.chatbot}/api/sessions/{name}/events", headers=customer
        ).start()
        whispered = await http.post(
            f"{d.workbench}/api/sessions/{name}/notes",
            json={"content": "Offer the refund"},
            headers=lead,
        )
        assert whispered.status_code == 201
        await ann_stream.wait_type("note", session_name=name, agent_id="lead")

        # Refusals: a chat it moved from, its own, one not held.
        moved = await http.post(
            f"{d.workbench}/api/supervisor/sessions/{name}/takeover",
            json={"expected_holder": "bob"},
            headers=lead,
        )
        assert moved.status_code == 409
        assert "held by 'ann' now, not 'bob'" in moved.json()["detail"]
        bad = await http.post(
            f"{d.workbench}/api/supervisor/sessions/{name}/takeover",
            json={"expected_holder": "no:pe"},
            headers=lead,
        )
        assert bad.status_code == 422
        missing = await http.post(
            f"{d.workbench}/api/supervisor/sessions/nope/takeover", headers=lead
        )
        assert missing.status_code == 404

        taken = await http.post(
            f"{d.workbench}/api/supervisor/sessions/{name}/takeover",
            json={"expected_holder": "ann"},
            headers=lead,
        )
        assert taken.status_code == 200, taken.text
        assert taken.json()["agent_id"] == "lead"
        notice = await ann_stream.wait_type("taken_over", session_name=name, by="lead")
        assert notice.payload["agent_id"] == "lead"
        await customer_stream.wait_type("status_change", session_name=name, agent_id="lead")
        await view.wait_type("assigned", session_name=name, taken_over_from="ann")
        again = await http.post(
            f"{d.workbench}/api/supervisor/sessions/{name}/takeover", headers=lead
        )
        assert again.status_code == 409
        assert "you hold it already" in again.json()["detail"]
        assert all("Offer the refund" not in e.data for e in customer_stream.events)
        await customer_stream.close()

        # ann can no longer write; the lead can.
        late = await http.post(
            f"{d.workbench}/api/sessions/{name}/messages",
            json={"agent_id": "ann", "content": "still me"},
            headers=d.agent_headers("ann"),
        )
        assert late.status_code == 403
        mine = await http.get(f"{d.workbench}/api/agents/me/sessions", headers=lead)
        assert name in [s["session_name"] for s in mine.json()]

        # The webhook: a 'transferred' that says it was a takeover, signed.
        def delivered() -> dict[str, object] | None:
            for got in receiver.received:
                body = got.json
                if body.get("session_name") == name and body.get("type") == "transferred":
                    got.verify(HOOK_SECRET)
                    return body
            return None

        hook = wait_until(delivered, timeout=15, description="the takeover's webhook")
        assert isinstance(hook, dict)
        data = hook["data"]
        assert isinstance(data, dict)
        assert (data["from_agent_id"], data["to_agent_id"], data["takeover"]) == (
            "ann",
            "lead",
            True,
        )
    finally:
        await view.close()
        await ann_stream.close()
