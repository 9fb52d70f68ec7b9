"""Typing signals across the two services as processes: the customer's reaches the agent's
stream on the workbench, the agent's the customer's stream on the chatbot; a reconnect
with ``Last-Event-ID`` replays the messages around them but never a typing event; bad
input gets a clear 4xx."""

from __future__ import annotations

import httpx
import pytest

from tests.support.deployment import Deployment, new_chat, start_deployment, stop_deployment
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e


async def test_typing_crosses_the_services_and_is_never_replayed(deployment: Deployment) -> None:
    d = deployment
    hana = d.agent_headers("hana")
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await new_chat(http, d, "hana")
        token = customer["Authorization"].removeprefix("Bearer ")
        customer_url = f"{d.chatbot}/api/sessions/{name}/events?token={token}"
        stream = await SseStream(customer_url).start()
        agent_stream = await SseStream(
            f"{d.workbench}/api/agents/hana/events", headers=hana
        ).start()
        try:
            sent = await http.post(
                f"{d.chatbot}/api/sessions/{name}/typing", json={"typing": True}, headers=customer
            )
            assert sent.status_code == 204, sent.text
            seen = await agent_stream.wait_type("typing", session_name=name, who="customer")
            assert seen.payload["typing"] is True
            assert seen.id is None  # no id: the browser keeps its last real one

            await http.post(
                f"{d.workbench}/api/sessions/{name}/messages",
                json={"agent_id": "hana", "content": "first"},
                headers=hana,
            )
            first = await stream.wait_type("new_message", content="first")
            agent_typing = await http.post(
                f"{d.workbench}/api/sessions/{name}/typing", json={}, headers=hana
            )
            assert agent_typing.status_code == 204, agent_typing.text
            await stream.wait_type("typing", who="agent", agent_id="hana", typing=True)
            await http.post(
                f"{d.workbench}/api/sessions/{name}/messages",
                json={"agent_id": "hana", "content": "second"},
                headers=hana,
            )
            await stream.wait_type("new_message", content="second")
        finally:
            await stream.close()
            await agent_stream.close()

        # The customer reconnects from "first": "second" again, the typing never.
        assert first.id is not None
        resumed = await SseStream(customer_url, headers={"Last-Event-ID": first.id}).start()
        try:
            await resumed.wait_type("new_message", content="second")
            assert resumed.of_type("typing") == []
            assert [e.payload.get("content") for e in resumed.of_type("new_message")] == ["second"]
        finally:
            await resumed.close()


async def test_typing_refuses_bad_input_clearly(deployment: Deployment) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await new_chat(http, d, "hana")
        other, _ = await new_chat(http, d, "hana")

        unknown = await http.post(
            f"{d.chatbot}/api/sessions/{name}/typing", json={"typing": "maybe"}, headers=customer
        )
        assert unknown.status_code == 422, unknown.text
        extra = await http.post(
            f"{d.chatbot}/api/sessions/{name}/typing",
            json={"typing": True, "x": 1},
            headers=customer,
        )
        assert extra.status_code == 422, extra.text
        elsewhere = await http.post(f"{d.chatbot}/api/sessions/{other}/typing", headers=customer)
        assert elsewhere.status_code == 403, elsewhere.text
        anonymous = await http.post(f"{d.chatbot}/api/sessions/{name}/typing")
        assert anonymous.status_code == 401, anonymous.text
        not_holder = await http.post(
            f"{d.workbench}/api/sessions/{name}/typing", headers=d.agent_headers("kai")
        )
        assert not_holder.status_code == 403, not_holder.text
        assert "does not hold" in not_holder.json()["detail"]
        missing = await http.post(
            f"{d.workbench}/api/sessions/nope-404/typing", headers=d.agent_headers("hana")
        )
        assert missing.status_code == 404, missing.text

        closed = await http.post(
            f"{d.workbench}/api/sessions/{name}/close",
            json={"agent_id": "hana"},
            headers=d.agent_headers("hana"),
        )
        assert closed.status_code == 200, closed.text
        after = await http.post(f"{d.chatbot}/api/sessions/{name}/typing", headers=customer)
        assert after.status_code == 409, after.text
        assert "closed" in after.json()["detail"]


async def test_a_flood_of_typing_signals_is_refused_with_retry_after() -> None:
    d = start_deployment(env={"TYPING_RATE_LIMIT_PER_MINUTE": "6", "TYPING_RATE_LIMIT_BURST": "2"})
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            name, customer = await new_chat(http, d, "hana")
            answers = [
                (await http.post(f"{d.chatbot}/api/sessions/{name}/typing", headers=customer))
                for _ in range(3)
            ]
            assert [a.status_code for a in answers] == [204, 204, 429]
            assert int(answers[2].headers["Retry-After"]) >= 1
            assert "too many typing signals" in answers[2].json()["detail"]
    finally:
        stop_deployment(d)
