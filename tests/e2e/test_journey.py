"""The product's journey across the two services, as real processes.

A customer on the chatbot service asks for a human; an agent on the workbench
sees it at once, takes over, they talk, the agent releases and the bot answers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infrastructure.auth.tokens import Role
from tests.support.deployment import Deployment, start_deployment, stop_deployment
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e

#: The issue's bound for escalation to reach both sides.
ESCALATION_BOUND_SECONDS = 1.0


async def run_journey(
    customer_api: str,
    customer_stream_base: str,
    agent_api: str,
    agent_stream_base: str,
    d: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        created = await http.post(f"{customer_api}/api/sessions", json={})
        assert created.status_code == 201, created.text
        session = created.json()
        name, token = session["session_name"], session["token"]
        assert session["status"] == "ai"
        customer = {"Authorization": f"Bearer {token}"}

        customer_stream = await SseStream(
            f"{customer_stream_base}/api/sessions/{name}/events?token={token}"
        ).start()
        agent_token = d.token(Role.AGENT, "alice")
        agent_stream = await SseStream(
            f"{agent_stream_base}/api/agents/alice/events?token={agent_token}"
        ).start()
        try:
            # The customer asks for a human.
            answer = await http.post(
                f"{customer_api}/api/sessions/{name}/messages",
                json={"content": "转人工"},
                headers=customer,
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["escalated"] is True
            request = await agent_stream.wait_type(
                "transfer_request", ESCALATION_BOUND_SECONDS, session_name=name
            )
            assert request.envelope["source"] == "ai_chatbot"
            waiting = await customer_stream.wait_type(
                "status_change", ESCALATION_BOUND_SECONDS, status="waiting_agent"
            )
            assert waiting.payload["queue_position"] >= 1

            # The queue shows it; a second agent loses the race.
            queue = await http.get(
                f"{agent_api}/api/sessions?status=waiting_agent", headers=d.agent_headers("alice")
            )
            assert name in [s["session_name"] for s in queue.json()]
            took = await http.post(
                f"{agent_api}/api/sessions/{name}/takeover",
                json={"agent_id": "alice"},
                headers=d.agent_headers("alice"),
            )
            assert took.status_code == 200, took.text
            lost = await http.post(
                f"{agent_api}/api/sessions/{name}/takeover",
                json={"agent_id": "bob"},
                headers=d.agent_headers("bob"),
            )
            assert lost.status_code == 409
            assert "alice" in lost.json()["detail"]
            joined = await customer_stream.wait_type("status_change", status="agent_active")
            assert joined.payload["agent_id"] == "alice"

            # The agent writes; the customer sees it on the other service.
            said = await http.post(
                f"{agent_api}/api/sessions/{name}/messages",
                json={"agent_id": "alice", "content": "Hello, I am Alice."},
                headers=d.agent_headers("alice"),
            )
            assert said.status_code == 201, said.text
            await customer_stream.wait_type(
                "new_message", sender="agent", content="Hello, I am Alice."
            )

            # The customer answers; it reaches the agent, and the bot stays quiet.
            reply = await http.post(
                f"{customer_api}/api/sessions/{name}/messages",
                json={"content": "My parcel is late"},
                headers=customer,
            )
            assert reply.status_code == 201
            assert reply.json()["reply"] is None
            await agent_stream.wait_type(
                "new_message", sender="customer", content="My parcel is late"
            )

            # Release: back to the bot, which answers the next message.
            released = await http.post(
                f"{agent_api}/api/sessions/{name}/release",
                json={"agent_id": "alice"},
                headers=d.agent_headers("alice"),
            )
            assert released.status_code == 200
            await customer_stream.wait_type("status_change", status="ai")
            again = await http.post(
                f"{customer_api}/api/sessions/{name}/messages",
                json={"content": "What are your opening hours?"},
                headers=customer,
            )
            assert again.json()["reply"]["sender"] == "bot"
            final = await customer_stream.wait_for(
                lambda e: (
                    e.type == "new_message"
                    and e.payload.get("sender") == "bot"
                    and "message_id" in e.payload
                ),
                what="the bot's final answer",
            )
            assert final.payload["message_id"] == again.json()["reply"]["id"]

            # No bot answer was ever given to an agent's message.
            bot_answers = [
                e
                for e in customer_stream.of_type("new_message")
                if e.payload.get("sender") == "bot" and not e.payload.get("partial")
            ]
            assert len(bot_answers) == 1

            # The transcript and the stream agree.
            transcript = await http.get(
                f"{customer_api}/api/sessions/{name}/messages", headers=customer
            )
            ids = [m["id"] for m in transcript.json()]
            streamed = [
                e.payload["message_id"]
                for e in customer_stream.of_type("new_message")
                if "message_id" in e.payload
            ]
            assert ids == streamed
        finally:
            await customer_stream.close()
            await agent_stream.close()


async def test_journey_across_the_two_services(deployment: Deployment) -> None:
    await run_journey(
        deployment.chatbot,
        deployment.chatbot,
        deployment.workbench,
        deployment.workbench,
        deployment,
    )


@pytest.fixture(scope="module")
def replicated() -> Iterator[Deployment]:
    deployed = start_deployment(replicas=2)
    yield deployed
    stop_deployment(deployed)


async def test_journey_with_two_replicas_of_each_service(replicated: Deployment) -> None:
    """Customer and agent each write to one replica and follow another."""
    chat_a, chat_b = (p.url for p in replicated.chatbots)
    work_a, work_b = (p.url for p in replicated.workbenches)
    await run_journey(chat_a, chat_b, work_b, work_a, replicated)
