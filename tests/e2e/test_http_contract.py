"""The HTTP contract of both services against real processes: bad input, races, framing."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from infrastructure.auth.tokens import Role
from tests.support.deployment import Deployment
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e


async def _session(http: httpx.AsyncClient, d: Deployment) -> tuple[str, dict[str, str]]:
    created = await http.post(f"{d.chatbot}/api/sessions", json={})
    assert created.status_code == 201, created.text
    body = created.json()
    return body["session_name"], {"Authorization": f"Bearer {body['token']}"}


@pytest.mark.parametrize("bad_name", ["a b", "x" * 65, "s1:x", "s*", "会话"])
async def test_a_session_name_outside_the_pattern_is_422(
    deployment: Deployment, bad_name: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        created = await http.post(
            f"{deployment.chatbot}/api/sessions", json={"session_name": bad_name}
        )
        assert created.status_code == 422
        published = await http.post(
            f"{deployment.chatbot}/api/events/session/{bad_name}",
            json={"x": 1},
            headers=deployment.service_headers(),
        )
        assert published.status_code in (404, 422)  # a '/' or '*' never reaches a channel
        assert published.status_code != 202


async def test_an_unknown_session_is_404_for_an_agent(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            f"{deployment.workbench}/api/sessions/nobody-here",
            headers=deployment.agent_headers("a1"),
        )
        assert answer.status_code == 404
        assert "nobody-here" in answer.json()["detail"]


async def test_a_body_over_the_size_limit_is_413(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _session(http, deployment)
        huge = "x" * (70 * 1024)
        answer = await http.post(
            f"{deployment.chatbot}/api/sessions/{name}/messages",
            json={"content": huge},
            headers=customer,
        )
        assert answer.status_code == 413
        long_message = "y" * 5000  # under the body limit, over MESSAGE_MAX_CHARS
        answer = await http.post(
            f"{deployment.chatbot}/api/sessions/{name}/messages",
            json={"content": long_message},
            headers=customer,
        )
        assert answer.status_code == 413
        assert "5000 characters received, at most 4000 allowed" in answer.json()["detail"]


async def test_an_illegal_transition_is_409_and_says_the_state(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, _ = await _session(http, deployment)
        answer = await http.post(
            f"{deployment.workbench}/api/sessions/{name}/release",
            json={"agent_id": "a1"},
            headers=deployment.agent_headers("a1"),
        )
        assert answer.status_code in (403, 409)
        answer = await http.post(
            f"{deployment.workbench}/api/sessions/{name}/takeover",
            json={"agent_id": "a1"},
            headers=deployment.agent_headers("a1"),
        )
        assert answer.status_code == 409
        assert "is ai" in answer.json()["detail"]


async def test_malformed_json_is_422(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _session(http, deployment)
        answer = await http.post(
            f"{deployment.chatbot}/api/sessions/{name}/messages",
            content=b'{"content": "unterminated',
            headers={**customer, "Content-Type": "application/json"},
        )
        assert answer.status_code == 422


async def test_twenty_concurrent_takeovers_give_one_200_and_nineteen_409(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _session(http, deployment)
        escalated = await http.post(
            f"{deployment.chatbot}/api/manual/escalate",
            json={"session_name": name},
            headers=customer,
        )
        assert escalated.status_code == 200, escalated.text
        answers = await asyncio.gather(
            *(
                http.post(
                    f"{deployment.workbench}/api/sessions/{name}/takeover",
                    json={"agent_id": f"agent{i}"},
                    headers=deployment.agent_headers(f"agent{i}"),
                )
                for i in range(20)
            )
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] + [409] * 19
        winner = next(a.json()["agent_id"] for a in answers if a.status_code == 200)
        state = await http.get(f"{deployment.chatbot}/api/sessions/{name}", headers=customer)
        assert state.json()["agent_id"] == winner


async def test_waiting_sessions_know_their_place_and_move_up(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        sessions = [await _session(http, deployment) for _ in range(3)]
        for name, customer in sessions:
            answer = await http.post(
                f"{deployment.chatbot}/api/manual/escalate",
                json={"session_name": name},
                headers=customer,
            )
            assert answer.status_code == 200
        queue = await http.get(
            f"{deployment.workbench}/api/sessions?status=waiting_agent",
            headers=deployment.agent_headers("a1"),
        )
        ours = [s for s in queue.json() if s["session_name"] in {n for n, _ in sessions}]
        assert [s["session_name"] for s in ours] == [n for n, _ in sessions]  # oldest first
        last_name, last_customer = sessions[-1]
        before = (
            await http.get(f"{deployment.chatbot}/api/sessions/{last_name}", headers=last_customer)
        ).json()
        assert before["waited_seconds"] is not None
        took = await http.post(
            f"{deployment.workbench}/api/sessions/{sessions[0][0]}/takeover",
            json={"agent_id": "a1"},
            headers=deployment.agent_headers("a1"),
        )
        assert took.status_code == 200
        after = (
            await http.get(f"{deployment.chatbot}/api/sessions/{last_name}", headers=last_customer)
        ).json()
        assert after["queue_position"] == before["queue_position"] - 1


def test_the_stream_framing_seen_by_a_raw_http_client(deployment: Deployment) -> None:
    """What `curl -N` shows: headers, then `id:`/`data:` frames as events happen."""
    with httpx.Client(timeout=10) as http:
        created = http.post(f"{deployment.chatbot}/api/sessions", json={}).json()
    name, token = created["session_name"], created["token"]
    host, port = deployment.chatbot.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = f"GET /api/sessions/{name}/events?token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        sock.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the headers"
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        headers = head.decode().lower()
        assert headers.startswith("http/1.1 200")
        assert "content-type: text/event-stream" in headers
        assert "cache-control: no-cache" in headers
        assert "x-accel-buffering: no" in headers
        with httpx.Client(timeout=10) as http:
            published = http.post(
                f"{deployment.chatbot}/api/events/session/{name}?type=parcel_shipped",
                json={"order": "A-17"},
                headers={"Authorization": f"Bearer {deployment.token(Role.SERVICE, 'orders')}"},
            )
            assert published.status_code == 202, published.text
        event_id = published.json()["id"]
        while b'"parcel_shipped"' not in rest:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the event"
            rest += chunk
        text = rest.decode()
        assert f"id: {event_id}\ndata: " in text
        data_line = next(line for line in text.splitlines() if "parcel_shipped" in line)
        assert data_line.startswith("data: {")
        assert '"source":"orders"' in data_line
        assert '"order":"A-17"' in data_line


async def test_the_callback_checks_what_an_outside_system_reports(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, _ = await _session(http, deployment)
        service = deployment.service_headers()
        url = f"{deployment.chatbot}/api/manual/callback"
        no_agent = await http.post(
            url, json={"session_name": name, "status": "agent_active"}, headers=service
        )
        assert no_agent.status_code in (409, 422)  # ai -> agent_active is not a transition either
        waiting = await http.post(
            url, json={"session_name": name, "status": "waiting_agent"}, headers=service
        )
        assert waiting.status_code == 200
        assert waiting.json()["queue_position"] >= 1
        no_agent = await http.post(
            url, json={"session_name": name, "status": "agent_active"}, headers=service
        )
        assert no_agent.status_code == 422
        held = await http.post(
            url,
            json={"session_name": name, "status": "agent_active", "agent_id": "ext1"},
            headers=service,
        )
        assert held.status_code == 200
        assert held.json()["agent_id"] == "ext1"
        unknown = await http.post(
            url, json={"session_name": "nobody", "status": "closed"}, headers=service
        )
        assert unknown.status_code == 404


async def test_an_agent_lists_what_it_holds_and_hears_when_it_loses_a_session(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _session(http, deployment)
        await http.post(
            f"{deployment.chatbot}/api/manual/escalate",
            json={"session_name": name},
            headers=customer,
        )
        carol = deployment.agent_headers("carol")
        took = await http.post(
            f"{deployment.workbench}/api/sessions/{name}/takeover",
            json={"agent_id": "carol"},
            headers=carol,
        )
        assert took.status_code == 200
        lost = await http.post(
            f"{deployment.workbench}/api/sessions/{name}/takeover",
            json={"agent_id": "dave"},
            headers=deployment.agent_headers("dave"),
        )
        assert lost.json()["holder"] == "carol"
        mine = await http.get(f"{deployment.workbench}/api/agents/carol/sessions", headers=carol)
        assert [s["session_name"] for s in mine.json()] == [name]
        same = await http.get(
            f"{deployment.workbench}/api/sessions?status=agent_active", headers=carol
        )
        assert [s["session_name"] for s in same.json()] == [name]
        other = await http.get(
            f"{deployment.workbench}/api/agents/carol/sessions",
            headers=deployment.agent_headers("dave"),
        )
        assert other.status_code == 403
        closed = await http.get(f"{deployment.workbench}/api/sessions?status=closed", headers=carol)
        assert closed.status_code == 422

        token = deployment.token(Role.AGENT, "carol")
        stream = await SseStream(
            f"{deployment.workbench}/api/agents/carol/events?token={token}"
        ).start()
        try:
            # An outside system closes the session: carol's workbench hears it.
            callback = await http.post(
                f"{deployment.chatbot}/api/manual/callback",
                json={"session_name": name, "status": "closed"},
                headers=deployment.service_headers(),
            )
            assert callback.status_code == 200
            await stream.wait_type("status_change", session_name=name, status="closed")
        finally:
            await stream.close()
        assert (
            await http.get(f"{deployment.workbench}/api/agents/carol/sessions", headers=carol)
        ).json() == []


async def test_a_payload_json_cannot_carry_is_422(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for body in (b'{"n": -10292070830831252779590221824}', b'{"s": "\\ud994"}'):
            answer = await http.post(
                f"{deployment.chatbot}/api/events/broadcast",
                content=body,
                headers={**deployment.service_headers(), "Content-Type": "application/json"},
            )
            assert answer.status_code == 422, body


async def test_a_malformed_last_event_id_is_400(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _session(http, deployment)
        url = f"{deployment.chatbot}/api/sessions/{name}/events"
        for bad in ("not-an-id", "e1.5-1,e2.5-1"):
            answer = await http.get(url, headers={**customer, "Last-Event-ID": bad})
            assert answer.status_code == 400, bad
        for bad in ("zz", "e1.١٢-3"):  # other scripts' digits are not ids
            answer = await http.get(url, params={"last_event_id": bad}, headers=customer)
            assert answer.status_code == 400, bad
