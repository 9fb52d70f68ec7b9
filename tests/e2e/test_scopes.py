"""Who may do what, against the real services: one test per cell that matters."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from tests.support.deployment import Deployment, start_deployment, stop_deployment
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def d() -> Iterator[Deployment]:
    deployed = start_deployment(
        env={"MAX_STREAMS_PER_TOKEN": "2", "RATE_LIMIT_PER_MINUTE": "60", "RATE_LIMIT_BURST": "5"}
    )
    yield deployed
    stop_deployment(deployed)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _customer(d: Deployment) -> tuple[str, str]:
    answer = httpx.post(f"{d.chatbot}/api/sessions", json={}, timeout=10)
    assert answer.status_code == 201
    return answer.json()["session_name"], answer.json()["token"]


def _forged(d: Deployment, kind: str) -> str:
    claims = {"sub": "x", "role": "agent", "iat": int(time.time()), "jti": "j"}
    if kind == "expired":
        claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
        return jwt.encode(claims, d.settings.AUTH_SECRET, algorithm="HS256")
    claims["exp"] = int(time.time()) + 3600
    if kind == "other-secret":
        return jwt.encode(
            claims, "another-secret-of-the-right-length-0123456789", algorithm="HS256"
        )
    if kind == "alg-none":

        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
    return "not-a-token"


@pytest.mark.parametrize("kind", ["expired", "other-secret", "alg-none", "garbage"])
def test_a_bad_token_is_401(d: Deployment, kind: str) -> None:
    token = _forged(d, kind)
    answer = httpx.get(f"{d.workbench}/api/sessions", headers=_bearer(token), timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    stream = httpx.get(f"{d.workbench}/api/agents/x/events?token={token}", timeout=10)
    assert stream.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/s1"),
        ("GET", "/api/sessions/s1/events"),
        ("GET", "/api/sessions/s1/messages"),
        ("POST", "/api/sessions/s1/messages"),
        ("POST", "/api/events/session/s1"),
        ("POST", "/api/manual/callback"),
    ],
)
def test_no_token_is_401_on_the_chatbot(d: Deployment, method: str, path: str) -> None:
    answer = httpx.request(method, f"{d.chatbot}{path}", json={}, timeout=10)
    assert answer.status_code == 401


def test_a_customer_reads_nothing_of_another_session_and_learns_nothing(d: Deployment) -> None:
    mine, token = _customer(d)
    other, _ = _customer(d)
    bodies = set()
    for path in (
        f"/api/sessions/{other}",
        f"/api/sessions/{other}/messages",
        f"/api/sessions/{other}/events?token={token}",
        "/api/sessions/no-such-session",
        "/api/sessions/no-such-session/events?token=" + token,
    ):
        answer = httpx.get(f"{d.chatbot}{path}", headers=_bearer(token), timeout=10)
        assert answer.status_code == 403, path
        bodies.add(answer.text)
    # One answer, whether the session exists or not.
    assert len(bodies) == 1
    own = httpx.get(f"{d.chatbot}/api/sessions/{mine}", headers=_bearer(token), timeout=10)
    assert own.status_code == 200


def test_a_customer_cannot_take_over_or_release(d: Deployment) -> None:
    name, token = _customer(d)
    for action in ("takeover", "release"):
        answer = httpx.post(
            f"{d.workbench}/api/sessions/{name}/{action}",
            json={"agent_id": name},
            headers=_bearer(token),
            timeout=10,
        )
        assert answer.status_code == 403


def test_an_agent_cannot_use_the_publish_api_or_the_callback(d: Deployment) -> None:
    name, _ = _customer(d)
    agent = d.agent_headers("a1")
    published = httpx.post(f"{d.chatbot}/api/events/session/{name}", json={"x": 1}, headers=agent)
    assert published.status_code == 403
    callback = httpx.post(
        f"{d.chatbot}/api/manual/callback",
        json={"session_name": name, "status": "closed"},
        headers=agent,
    )
    assert callback.status_code == 403
    service = httpx.post(
        f"{d.chatbot}/api/events/session/{name}", json={"x": 1}, headers=d.service_headers()
    )
    assert service.status_code == 202


def test_an_agent_only_releases_or_writes_into_a_session_it_holds(d: Deployment) -> None:
    name, token = _customer(d)
    httpx.post(
        f"{d.chatbot}/api/manual/escalate", json={"session_name": name}, headers=_bearer(token)
    )
    took = httpx.post(
        f"{d.workbench}/api/sessions/{name}/takeover",
        json={"agent_id": "a1"},
        headers=d.agent_headers("a1"),
    )
    assert took.status_code == 200
    other = d.agent_headers("a2")
    wrote = httpx.post(
        f"{d.workbench}/api/sessions/{name}/messages",
        json={"agent_id": "a2", "content": "hi"},
        headers=other,
    )
    assert wrote.status_code == 403
    released = httpx.post(
        f"{d.workbench}/api/sessions/{name}/release", json={"agent_id": "a2"}, headers=other
    )
    assert released.status_code == 403
    impersonated = httpx.post(
        f"{d.workbench}/api/sessions/{name}/release", json={"agent_id": "a1"}, headers=other
    )
    assert impersonated.status_code == 403


async def test_a_token_over_its_stream_limit_gets_429_while_others_are_served(
    d: Deployment,
) -> None:
    name, token = _customer(d)
    url = f"{d.chatbot}/api/sessions/{name}/events?token={token}"
    streams = [await SseStream(url).start() for _ in range(2)]  # MAX_STREAMS_PER_TOKEN=2
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            over = await http.get(url)
            assert over.status_code == 429
            assert int(over.headers["retry-after"]) >= 1
            other_name, other_token = _customer(d)
            served = await SseStream(
                f"{d.chatbot}/api/sessions/{other_name}/events?token={other_token}"
            ).start()
            await served.close()
    finally:
        for stream in streams:
            await stream.close()


def test_message_endpoints_are_rate_limited_per_token(d: Deployment) -> None:
    name, token = _customer(d)
    codes = [
        httpx.post(
            f"{d.chatbot}/api/sessions/{name}/messages",
            json={"content": f"hello {i}"},
            headers=_bearer(token),
            timeout=10,
        ).status_code
        for i in range(8)  # RATE_LIMIT_BURST=5
    ]
    assert codes[:5] == [201] * 5
    assert 429 in codes[5:]


def test_tokens_never_reach_the_access_log(d: Deployment) -> None:
    name, token = _customer(d)
    httpx.get(f"{d.chatbot}/api/sessions/{name}/messages?token={token}", timeout=10)
    log = d.chatbots[0].output()
    assert f"/api/sessions/{name}/messages" in log
    assert token not in log
