"""Memory mode records too: the in-memory session store appends to its ``RecordLog`` (the
record stream's twin) and the service's own archiver copies it into the record (SQLite in
memory here: no file, no Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from infrastructure.sessions.record_log import RecordEntry, RecordLog
from infrastructure.web.fast_path import ServiceApp
from products.agent_workbench.app import create_app
from tests.support.auth import make_settings
from tests.support.processes import async_wait_until


@pytest.fixture
def settings() -> Settings:
    return make_settings(USE_REDIS_SSE=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[ServiceApp]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def bearer(settings: Settings, role: Role, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, role, subject)}"}


async def test_the_workbench_records_in_memory_mode(app: ServiceApp, settings: Settings) -> None:
    store = app.state.store
    await store.create("s1")
    await store.escalate("s1")
    alice = bearer(settings, Role.AGENT, "alice")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        took = await http.post(
            "/api/sessions/s1/takeover", json={"agent_id": "alice"}, headers=alice
        )
        assert took.status_code == 200
        said = await http.post(
            "/api/sessions/s1/messages",
            json={"agent_id": "alice", "content": "您好 hello"},
            headers=alice,
        )
        assert said.status_code == 201

        async def recorded() -> dict[str, Any] | None:
            answer = await http.get("/api/conversations/s1", headers=alice)
            body: dict[str, Any] = answer.json()
            return body if answer.status_code == 200 and body["message_count"] == 1 else None

        found = await async_wait_until(recorded, timeout=10, description="s1 recorded")
        assert isinstance(found, dict)
        assert found["status"] == "agent_active"
        assert found["messages"][0]["content"] == "您好 hello"
        page = await http.get("/api/conversations", params={"q": "您好"}, headers=alice)
        assert [i["session_name"] for i in page.json()["items"]] == ["s1"]
        metrics = (await http.get("/metrics")).text
        assert "record_archived_entries_total" in metrics
        erased = await http.delete("/api/customers/s1", headers=bearer(settings, Role.SERVICE, "t"))
        assert erased.json() == {"customer_id": "s1", "record": True, "live": True, "files": 0}
        assert (await http.get("/api/sessions/s1", headers=alice)).status_code == 404


def test_record_log_reads_again_until_acknowledged() -> None:
    log = RecordLog(maxlen=3)
    first = log.append("session_created", "s1", 5)
    second = log.append("status", "s1", 5, status="waiting_agent")  # same ms: next sequence
    assert (first.id, second.id) == ("5-0", "5-1")
    assert log.read(10) == [first, second]
    assert log.read(10) == [first, second]  # not acknowledged: read again
    log.ack([first.id])
    assert log.read(10) == [second]
    for ts in (6, 7, 8):
        log.append("message", "s2", ts)
    assert len(log) == 3  # bounded, the oldest dropped and counted
    assert log.dropped == 1
    assert log.forget("s2") == 3


def test_a_stream_entry_without_kind_session_or_time_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks"):
        RecordEntry.from_stream("1-0", {"kind": "status", "ts": "1"})
    entry = RecordEntry.from_stream("1-0", {"kind": "status", "session": "s", "ts": "1", "x": "y"})
    assert entry.get("x") == "y"
    assert entry.get("missing") == ""
