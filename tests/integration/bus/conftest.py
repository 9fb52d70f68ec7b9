"""A chatbot service as a real process, on the shared test Redis, for the bus tests."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from infrastructure import container as process
from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from tests.conftest import SettingsFactory
from tests.support.processes import ServiceProcess
from tests.support.redis_server import RedisServer

CHATBOT_APP = "products.ai_chatbot.main:app"
#: The service's heartbeat: short, so that the heartbeat test sees pings within 2 s.
HEARTBEAT_SECONDS = 0.2


@pytest.fixture(autouse=True)
async def no_process_manager_left() -> AsyncIterator[None]:
    """Isolation: a test whose bus failed to stop leaves the process's Redis manager
    behind; close it here so that the next tests start clean (that test fails anyway)."""
    yield
    container = process.current()
    if container is not None:
        process.uninstall(container)
        if container.manager is not None:
            container.manager.outbox.clear()  # Redis may be gone: do not flush it again
        with contextlib.suppress(Exception):
            await container.close()


@dataclass
class BusService:
    process: ServiceProcess
    secret: str

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def chatbot_service(redis_server_session: RedisServer) -> Iterator[BusService]:
    secret = secrets.token_urlsafe(48)
    process = ServiceProcess(
        CHATBOT_APP,
        env={
            "REDIS_URL": redis_server_session.url,
            "USE_REDIS_SSE": "true",
            "AUTH_SECRET": secret,
            "SSE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "RATE_LIMIT_PER_MINUTE": "6000",
            "RATE_LIMIT_BURST": "1000",
        },
    )
    process.start()
    try:
        yield BusService(process, secret)
    finally:
        process.stop()


@pytest.fixture
def service_settings(chatbot_service: BusService, settings_factory: SettingsFactory) -> Settings:
    """Settings of the test process that match the service's (same Redis, same secret)."""
    return settings_factory(AUTH_SECRET=chatbot_service.secret)


def bearer(settings: Settings, role: Role, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, role, subject)}"}
