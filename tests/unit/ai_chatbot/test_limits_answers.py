"""The chatbot's refusals say what to do: when to retry, how long is too long; and 转人工 is
never blocked by the message rate limit (in-process app, memory mode)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from products.ai_chatbot.app import create_app
from tests.support.auth import make_settings


async def _client(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(USE_REDIS_SSE=False, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.fixture
async def chatbot() -> AsyncIterator[httpx.AsyncClient]:
    # One message a minute after a burst of 2: a refusal means a wait of tens of seconds.
    async for client in _client(
        RATE_LIMIT_PER_MINUTE=1,
        RATE_LIMIT_BURST=2,
        ESCALATION_RATE_LIMIT_PER_MINUTE=1,
        ESCALATION_RATE_LIMIT_BURST=2,
    ):
        yield client


async def _session(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    created = await client.post("/api/sessions", json={})
    assert created.status_code == 201, created.text
    body = created.json()
    return body["session_name"], {"Authorization": f"Bearer {body['token']}"}


async def _use_up_messages(client: httpx.AsyncClient, name: str, auth: dict[str, str]) -> None:
    for i in range(2):
        sent = await client.post(
            f"/api/sessions/{name}/messages", json={"content": f"hello {i}"}, headers=auth
        )
        assert sent.status_code == 201, sent.text


def _assert_says_when(answer: httpx.Response, what: str) -> int:
    assert answer.status_code == 429, answer.text
    seconds = int(answer.headers["retry-after"])
    assert 1 <= seconds <= 60
    assert answer.json()["detail"] == f"too many {what}: try again in {seconds} s"
    return seconds


async def test_a_refused_message_says_when_to_retry(chatbot: httpx.AsyncClient) -> None:
    name, auth = await _session(chatbot)
    await _use_up_messages(chatbot, name, auth)
    refused = await chatbot.post(
        f"/api/sessions/{name}/messages", json={"content": "hello again"}, headers=auth
    )
    assert _assert_says_when(refused, "messages") > 30  # 1 a minute: most of a minute


async def test_the_escalate_endpoint_ignores_the_message_bucket(
    chatbot: httpx.AsyncClient,
) -> None:
    name, auth = await _session(chatbot)
    await _use_up_messages(chatbot, name, auth)
    escalated = await chatbot.post(
        "/api/manual/escalate", json={"session_name": name}, headers=auth
    )
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["status"] == "waiting_agent"
    # ... and the message bucket is still empty: only 转人工 got through.
    refused = await chatbot.post(
        f"/api/sessions/{name}/messages", json={"content": "still there?"}, headers=auth
    )
    _assert_says_when(refused, "messages")


async def test_a_typed_request_for_a_human_gets_through_an_empty_message_bucket(
    chatbot: httpx.AsyncClient,
) -> None:
    name, auth = await _session(chatbot)
    await _use_up_messages(chatbot, name, auth)
    asked = await chatbot.post(
        f"/api/sessions/{name}/messages", json={"content": "转人工"}, headers=auth
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["escalated"] is True
    assert asked.json()["status"] == "waiting_agent"


async def test_the_escalation_bucket_has_its_own_limit(chatbot: httpx.AsyncClient) -> None:
    name, auth = await _session(chatbot)
    await _use_up_messages(chatbot, name, auth)
    codes = []
    for _ in range(2):  # ESCALATION_RATE_LIMIT_BURST=2
        answer = await chatbot.post(
            f"/api/sessions/{name}/messages", json={"content": "转人工"}, headers=auth
        )
        codes.append(answer.status_code)
    assert codes == [201, 201]
    refused = await chatbot.post("/api/manual/escalate", json={"session_name": name}, headers=auth)
    _assert_says_when(refused, "requests for a human")


async def test_a_message_over_the_limit_is_refused_naming_both_lengths() -> None:
    async for client in _client():  # MESSAGE_MAX_CHARS: the default 4000
        name, auth = await _session(client)
        for path, body in (
            (f"/api/sessions/{name}/messages", {"content": "字" * 5000}),
            ("/api/manual/message", {"session_name": name, "content": "x" * 5000}),
        ):
            refused = await client.post(path, json=body, headers=auth)
            assert refused.status_code == 413, refused.text
            detail = refused.json()["detail"]
            assert re.search(r"\b5000 characters received\b", detail), detail
            assert re.search(r"\bat most 4000\b", detail), detail
            assert "MESSAGE_MAX_CHARS" in detail
        exactly = await client.post(
            f"/api/sessions/{name}/messages", json={"content": "y" * 4000}, headers=auth
        )
        assert exactly.status_code == 201, exactly.text
