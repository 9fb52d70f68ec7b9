"""A record database that does not answer: the service starts and chats all the same; the
record's endpoints answer 503 (never 500) and /readyz warns, without turning not-ready."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from infrastructure.web.fast_path import ServiceApp
from products.agent_workbench.app import create_app
from tests.support.auth import make_settings

NOWHERE = "postgresql+asyncpg://postgres@127.0.0.1:1/none"  # nothing listens on port 1


@pytest.fixture
def settings() -> Settings:
    return make_settings(USE_REDIS_SSE=False, DATABASE_URL=NOWHERE)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: ServiceApp = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


async def test_a_database_that_does_not_answer_is_a_503_and_a_warning(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    agent = {"Authorization": f"Bearer {issue_token(settings, Role.AGENT, 'alice')}"}
    service = {"Authorization": f"Bearer {issue_token(settings, Role.SERVICE, 't')}"}
    for method, url, headers in (
        ("GET", "/api/conversations?q=x", agent),
        ("GET", "/api/conversations/s1", agent),
        ("GET", "/api/reports/summary", agent),
        ("GET", "/api/customers/s1/export", service),
        ("DELETE", "/api/customers/s1", service),
    ):
        answer = await http.request(method, url, headers=headers)
        assert answer.status_code == 503, (url, answer.text)
        assert answer.headers["retry-after"] == "2"
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert any(w.startswith("record: database not ready") for w in ready.json()["warnings"])
    # the live side works
    assert (await http.get("/api/sessions?status=waiting_agent", headers=agent)).status_code == 200
