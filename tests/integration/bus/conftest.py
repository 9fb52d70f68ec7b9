"""A chatbot service as a real process, on the shared test Redis, for the bus tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from tests.conftest import SettingsFactory
from tests.support.processes import ServiceProcess
from tests.support.redis_server import RedisServer

CHATBOT_APP = "products.ai_chatbot.main:app"
#: The service's heartbeat: short, so that the heartbeat test sees pings within 2 s.
HEARTBEAT_SECONDS = 0.2


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
