"""The record through the services as real processes: a conversation reaches SQL, and its
transcript and search still answer after Redis forgot everything (FLUSHALL); bad input is
a clear 4xx; reports; a customer's data exported and erased in SQL and in Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from infrastructure.auth.tokens import Role
from infrastructure.sessions.record_log import record_key
from tests.support.deployment import Deployment
from tests.support.processes import async_wait_until

pytestmark = pytest.mark.e2e


async def conversation(http: httpx.AsyncClient, d: Deployment, words: str) -> tuple[str, str]:
    """A customer talks to the bot, asks for a human, alice answers and closes; the
    session's name and the customer's token."""
    created = (await http.post(f"{d.chatbot}/api/sessions", json={})).json()
    name, token = created["session_name"], created["token"]
    customer = {"Authorization": f"Bearer {token}"}
    for content in (words, "转人工"):
        sent = await http.post(
            f"{d.chatbot}/api/sessions/{name}/messages", json={"content": content}, headers=customer
        )
        assert sent.status_code == 201, sent.text
    alice = d.agent_headers("alice")
    body = {"agent_id": "alice"}
    took = await http.post(f"{d.workbench}/api/sessions/{name}/takeover", json=body, headers=alice)
    assert took.status_code == 200, took.text
    said = await http.post(
        f"{d.workbench}/api/sessions/{name}/messages",
        json={"agent_id": "alice", "content": "Alice here, 我来帮您"},
        headers=alice,
    )
    assert said.status_code == 201, said.text
    closed = await http.post(f"{d.workbench}/api/sessions/{name}/close", json=body, headers=alice)
    assert closed.status_code == 200, closed.text
    return name, token


async def recorded(http: httpx.AsyncClient, d: Deployment, name: str) -> dict[str, Any]:
    """The conversation once the archiver has all of it (as many messages as Redis)."""
    live = await http.get(
        f"{d.workbench}/api/sessions/{name}/messages", headers=d.agent_headers("alice")
    )
    count = len(live.json())

    async def archived() -> dict[str, Any] | None:
        answer = await http.get(
            f"{d.workbench}/api/conversations/{name}", headers=d.agent_headers("alice")
        )
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        return body if body["message_count"] == count and body["status"] == "closed" else None

    found = await async_wait_until(archived, timeout=15, description=f"{name} in the record")
    assert isinstance(found, dict)
    return found


def redis_client(d: Deployment) -> redis.Redis:
    return redis.Redis.from_url(d.redis.url)


async def test_the_record_answers_after_redis_forgot_everything(deployment: Deployment) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        name, token = await conversation(http, d, "my parcel is late, 我要退款")
        found = await recorded(http, d, name)
        assert [m["sender"] for m in found["messages"]][:2] == ["customer", "bot"]
        assert [c["status"] for c in found["status_history"]] == [
            "waiting_agent",
            "agent_active",
            "closed",
        ]
        client = redis_client(d)
        try:
            client.flushall()
        finally:
            client.close()
        agent = d.agent_headers("alice")
        gone = await http.get(f"{d.workbench}/api/sessions/{name}", headers=agent)
        assert gone.status_code == 404
        again = await http.get(f"{d.workbench}/api/conversations/{name}", headers=agent)
        assert again.status_code == 200
        assert again.json()["messages"] == found["messages"]
        for q in ("退款", "parcel late", "我来帮"):
            page = await http.get(
                f"{d.workbench}/api/conversations", params={"q": q}, headers=agent
            )
            assert page.status_code == 200, page.text
            assert name in [i["session_name"] for i in page.json()["items"]], q
        # the customer returning with its token sees its earlier transcript (on 8000)
        mine = await http.get(
            f"{d.chatbot}/api/conversations/{name}", headers={"Authorization": f"Bearer {token}"}
        )
        assert mine.status_code == 200
        assert mine.json()["messages"] == found["messages"]
        other = await http.get(
            f"{d.chatbot}/api/conversations/someone-else",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert other.status_code == 403
        # and the archiver goes on after the FLUSHALL (its group made again)
        name2, _ = await conversation(http, d, "after the flush")
        await recorded(http, d, name2)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": "W251bGwsICJhIl0"}, 400),
        ({"cursor": "x" * 500}, 422),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422),
        ({"from": "yesterday"}, 422),
        ({"q": "x" * 10_000}, 422),
        ({"agent_id": "a:b*"}, 422),
        ({"status": "DROP TABLE"}, 422),
        ({"limit": "0"}, 422),
        ({"limit": "1000"}, 422),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    deployment: Deployment, params: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            f"{deployment.workbench}/api/conversations",
            params=params,
            headers=deployment.agent_headers("alice"),
        )
    assert answer.status_code == status, answer.text
    assert "detail" in answer.json()


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "'; DROP TABLE record_messages; --",
        '"unbalanced',
        "NEAR(a b)",
        "a* OR b",
        "%_%",
        "\\",
        "退",
        "x" * 200,
    ],
)
async def test_sql_and_fts_syntax_in_q_is_only_text(deployment: Deployment, q: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            f"{deployment.workbench}/api/conversations",
            params={"q": q},
            headers=deployment.agent_headers("alice"),
        )
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["items"], list)


async def test_who_may_read_the_record(deployment: Deployment) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        url = f"{d.workbench}/api/conversations"
        assert (await http.get(url)).status_code == 401
        customer = {"Authorization": f"Bearer {d.token(Role.CUSTOMER, 's1')}"}
        assert (await http.get(url, headers=customer)).status_code == 403
        report = f"{d.workbench}/api/reports/summary"
        assert (await http.get(report, headers=customer)).status_code == 403
        erase = f"{d.workbench}/api/customers/s1"
        assert (await http.delete(erase, headers=d.agent_headers("alice"))).status_code == 403
        missing = await http.get(f"{url}/no-such-session", headers=d.agent_headers("alice"))
        assert missing.status_code == 404


async def test_reports_summary(deployment: Deployment) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        name, _ = await conversation(http, d, "report me")
        await recorded(http, d, name)
        agent = d.agent_headers("alice")
        answer = await http.get(f"{d.workbench}/api/reports/summary", headers=agent)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total"]["conversations"] >= 1
        assert body["total"]["escalations"] >= 1
        assert body["total"]["handle_median_seconds"] is not None
        assert "alice" in [a["agent_id"] for a in body["agents"]]
        assert {"from", "to", "days"} <= set(body)
        bad = await http.get(
            f"{d.workbench}/api/reports/summary",
            params={"from": "2026-03-01T00:00:00", "to": "2026-01-01T00:00:00"},
            headers=agent,
        )
        assert bad.status_code == 422
        too_long = await http.get(
            f"{d.workbench}/api/reports/summary",
            params={"from": "2020-01-01T00:00:00", "to": "2026-01-01T00:00:00"},
            headers=agent,
        )
        assert too_long.status_code == 422


async def test_a_customers_data_is_exported_and_erased_everywhere(
    deployment: Deployment,
) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        name, _ = await conversation(http, d, "please forget me 忘记我")
        await recorded(http, d, name)
        service = d.service_headers()
        exported = await http.get(f"{d.chatbot}/api/customers/{name}/export", headers=service)
        assert exported.status_code == 200, exported.text
        body = exported.json()
        assert body["record"]["session_name"] == name
        assert body["live"]["session"]["session_name"] == name
        assert any("忘记我" in m["content"] for m in body["live"]["messages"])

        erased = await http.delete(f"{d.workbench}/api/customers/{name}", headers=service)
        assert erased.status_code == 200, erased.text
        assert erased.json() == {"customer_id": name, "record": True, "live": True, "files": 0}
        agent = d.agent_headers("alice")
        assert (
            await http.get(f"{d.workbench}/api/conversations/{name}", headers=agent)
        ).status_code == 404
        assert (
            await http.get(f"{d.workbench}/api/sessions/{name}", headers=agent)
        ).status_code == 404
        page = await http.get(
            f"{d.workbench}/api/conversations", params={"q": "忘记我"}, headers=agent
        )
        assert name not in [i["session_name"] for i in page.json()["items"]]
        client = redis_client(d)
        try:
            assert [k for k in client.scan_iter(match=f"*{name}*")] == []
            entries: Any = client.xrange(record_key(d.settings.REDIS_SSE_CHANNEL_PREFIX))
            assert [e for e in entries if e[1].get(b"session") == name.encode()] == []
        finally:
            client.close()
        again = await http.get(f"{d.chatbot}/api/customers/{name}/export", headers=service)
        assert again.json() == {"customer_id": name, "record": None, "live": None}


async def test_archiver_backlog_on_metrics_and_readyz(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(f"{deployment.workbench}/metrics")).text
        for name in (
            "record_backlog_entries",
            "record_lag_seconds",
            "record_archived_entries_total",
        ):
            assert name in metrics, name
        ready = await http.get(f"{deployment.workbench}/readyz")
        assert ready.status_code == 200
        assert not [w for w in ready.json()["warnings"] if w.startswith("record")]
