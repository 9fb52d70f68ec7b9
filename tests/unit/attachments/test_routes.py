"""The upload route in one process (memory mode, no Redis): a file counts against the
message rate like a message does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from infrastructure.web.fast_path import ServiceApp
from products.ai_chatbot.app import create_app
from tests.support import files
from tests.support.auth import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        USE_REDIS_SSE=False,
        RATE_LIMIT_PER_MINUTE=1,
        RATE_LIMIT_BURST=2,
        ATTACHMENTS_DIR=tmp_path / "attachments",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[ServiceApp]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_flood_of_files_gets_429(app: ServiceApp, settings: Settings) -> None:
    await app.state.store.create("s1")
    customer = {"Authorization": f"Bearer {issue_token(settings, Role.CUSTOMER, 's1')}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        answers = [
            await http.post(
                "/api/sessions/s1/attachments",
                files={"file": ("a.pdf", files.pdf(), "application/pdf")},
                headers=customer,
            )
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert "Retry-After" in answers[2].headers
    assert len(await app.state.store.messages("s1")) == 2
