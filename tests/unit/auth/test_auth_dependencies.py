"""The auth dependencies, through a tiny app built here (not the services' routes)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Response
from pydantic import BaseModel

from infrastructure.auth.dependencies import (
    AGENT_COOKIE_NAME,
    CUSTOMER_COOKIE_NAME,
    FORBIDDEN_DETAIL,
    AgentStreamSelf,
    CurrentAgent,
    CurrentCustomer,
    CurrentPrincipal,
    ServiceCaller,
    SessionAccess,
    SessionStreamAccess,
    StreamAgent,
    StreamPrincipal,
    require_agent_identity,
    require_session_access,
    set_auth_cookie,
)
from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from tests.support.auth import OTHER_SECRET, SECRET, make_settings

EXISTING_SESSIONS = {"s1", "s2"}


class TakeoverBody(BaseModel):
    agent_id: str


def build_app(settings: Settings, lookups: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings

    def lookup(session_name: str) -> dict[str, Any]:
        lookups.append(session_name)
        if session_name not in EXISTING_SESSIONS:
            return {"found": False}
        return {"found": True, "session_name": session_name}

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
        return {"role": principal.role, "subject": principal.subject}

    @app.get("/api/sessions/{session_name}")
    async def get_session(session_name: str, principal: SessionAccess) -> dict[str, Any]:
        return lookup(session_name)

    @app.get("/api/sessions/{session_name}/events")
    async def session_events(session_name: str, principal: SessionStreamAccess) -> dict[str, str]:
        lookup(session_name)
        return {"role": principal.role, "subject": principal.subject}

    @app.post("/api/sessions/{session_name}/messages")
    async def post_message(session_name: str, principal: CurrentPrincipal) -> dict[str, str]:
        require_session_access(principal, session_name)  # the plain-function form
        lookup(session_name)
        return {"ok": "yes"}

    @app.post("/api/sessions/{session_name}/takeover")
    async def takeover(
        session_name: str, body: TakeoverBody, agent: CurrentAgent
    ) -> dict[str, str]:
        require_agent_identity(agent, body.agent_id)
        lookup(session_name)
        return {"agent_id": agent.subject}

    @app.get("/api/agents/{agent_id}/events")
    async def agent_events(agent_id: str, agent: AgentStreamSelf) -> dict[str, str]:
        return {"agent_id": agent.subject}

    @app.get("/api/queue/events")
    async def queue_events(agent: StreamAgent) -> dict[str, str]:
        return {"agent_id": agent.subject}

    @app.get("/any/events")
    async def any_events(principal: StreamPrincipal) -> dict[str, str]:
        return {"role": principal.role, "subject": principal.subject}

    @app.post("/api/events/broadcast", status_code=202)
    async def publish(service: ServiceCaller) -> dict[str, str]:
        return {"by": service.subject}

    @app.post("/customer-only")
    async def customer_only(customer: CurrentCustomer) -> dict[str, str]:
        return {"session": customer.subject}

    @app.post("/login/{role}/{subject}")
    async def login(role: Role, subject: str, response: Response) -> dict[str, str]:
        set_auth_cookie(response, settings, role, issue_token(settings, role, subject))
        return {}

    return app


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def lookups() -> list[str]:
    return []


@pytest.fixture
async def client(settings: Settings, lookups: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(settings, lookups))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookies(values: dict[str, str]) -> dict[str, str]:
    # A Cookie header, as a browser sends it (httpx deprecates per-request ``cookies=``).
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in values.items())}


@pytest.fixture
def customer_s1(settings: Settings) -> str:
    return issue_token(settings, Role.CUSTOMER, "s1")


@pytest.fixture
def agent_a1(settings: Settings) -> str:
    return issue_token(settings, Role.AGENT, "a1")


@pytest.fixture
def service_orders(settings: Settings) -> str:
    return issue_token(settings, Role.SERVICE, "orders")


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def assert_403(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {"detail": FORBIDDEN_DETAIL}


# --- 401: missing or bad token ------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/whoami", "/api/sessions/s1", "/api/sessions/s1/events", "/api/agents/a1/events"]
)
async def test_missing_token_is_401(client: httpx.AsyncClient, path: str) -> None:
    assert_401(await client.get(path))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "bearer"},
    ],
)
async def test_bad_authorization_header_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_401(await client.get("/api/sessions/s1", headers=headers))


async def test_token_from_another_secret_is_401(client: httpx.AsyncClient) -> None:
    forged = issue_token(make_settings(AUTH_SECRET=OTHER_SECRET), Role.AGENT, "a1")
    assert_401(await client.get("/api/sessions/s1", headers=bearer(forged)))
    assert_401(await client.get("/api/sessions/s1/events", params={"token": forged}))


async def test_expired_token_is_401(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    claims = {"sub": "a1", "role": "agent", "iat": now - 7200, "exp": now - 3600, "jti": "j"}
    expired = jwt.encode(claims, SECRET, algorithm="HS256")
    assert_401(await client.get("/api/sessions/s1", headers=bearer(expired)))
    assert_401(await client.get("/api/sessions/s1/events", params={"token": expired}))


# --- 403: the scope matrix --------------------------------------------------------------


async def test_customer_reads_its_own_session(client: httpx.AsyncClient, customer_s1: str) -> None:
    response = await client.get("/api/sessions/s1", headers=bearer(customer_s1))
    assert response.status_code == 200
    assert response.json()["session_name"] == "s1"


async def test_customer_token_for_s1_on_s2_is_403_before_any_lookup(
    client: httpx.AsyncClient, customer_s1: str, lookups: list[str]
) -> None:
    existing = await client.get("/api/sessions/s2", headers=bearer(customer_s1))
    missing = await client.get("/api/sessions/nope", headers=bearer(customer_s1))
    assert_403(existing)
    assert_403(missing)
    # Same status, same body, same headers: nothing tells whether s2 exists.
    assert existing.content == missing.content
    assert existing.headers == missing.headers
    assert lookups == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/s2/events"),
        ("POST", "/api/sessions/s2/messages"),
    ],
)
async def test_customer_token_for_s1_reads_and_writes_nothing_of_s2(
    client: httpx.AsyncClient, customer_s1: str, lookups: list[str], method: str, path: str
) -> None:
    assert_403(await client.request(method, path, headers=bearer(customer_s1)))
    assert lookups == []


async def test_customer_cannot_take_over(client: httpx.AsyncClient, customer_s1: str) -> None:
    response = await client.post(
        "/api/sessions/s1/takeover", json={"agent_id": "s1"}, headers=bearer(customer_s1)
    )
    assert_403(response)


async def test_agent_takes_over_only_as_itself(client: httpx.AsyncClient, agent_a1: str) -> None:
    ok = await client.post(
        "/api/sessions/s1/takeover", json={"agent_id": "a1"}, headers=bearer(agent_a1)
    )
    assert ok.status_code == 200
    assert_403(
        await client.post(
            "/api/sessions/s1/takeover", json={"agent_id": "a2"}, headers=bearer(agent_a1)
        )
    )


async def test_agent_reads_any_session(client: httpx.AsyncClient, agent_a1: str) -> None:
    for name in ("s1", "s2", "nope"):
        response = await client.get(f"/api/sessions/{name}", headers=bearer(agent_a1))
        assert response.status_code == 200


async def test_agent_on_service_only_route_is_403(client: httpx.AsyncClient, agent_a1: str) -> None:
    assert_403(await client.post("/api/events/broadcast", headers=bearer(agent_a1)))


async def test_customer_on_service_only_route_is_403(
    client: httpx.AsyncClient, customer_s1: str
) -> None:
    assert_403(await client.post("/api/events/broadcast", headers=bearer(customer_s1)))


async def test_service_on_service_route_is_accepted(
    client: httpx.AsyncClient, service_orders: str
) -> None:
    response = await client.post("/api/events/broadcast", headers=bearer(service_orders))
    assert response.status_code == 202
    assert response.json() == {"by": "orders"}


async def test_service_reaches_any_session(client: httpx.AsyncClient, service_orders: str) -> None:
    response = await client.post("/api/sessions/s2/messages", headers=bearer(service_orders))
    assert response.status_code == 200


async def test_customer_only_route(
    client: httpx.AsyncClient, customer_s1: str, agent_a1: str
) -> None:
    assert (await client.post("/customer-only", headers=bearer(customer_s1))).status_code == 200
    assert_403(await client.post("/customer-only", headers=bearer(agent_a1)))


async def test_agent_stream_only_for_the_agent_itself(
    client: httpx.AsyncClient, settings: Settings, agent_a1: str, customer_s1: str
) -> None:
    ok = await client.get("/api/agents/a1/events", params={"token": agent_a1})
    assert ok.json() == {"agent_id": "a1"}
    assert_403(await client.get("/api/agents/a2/events", params={"token": agent_a1}))
    assert_403(await client.get("/api/agents/a1/events", params={"token": customer_s1}))
    service = issue_token(settings, Role.SERVICE, "a1")  # same subject, wrong role
    assert_403(await client.get("/api/agents/a1/events", params={"token": service}))
    assert_403(await client.get("/api/queue/events", params={"token": customer_s1}))
    assert (await client.get("/api/queue/events", params={"token": agent_a1})).status_code == 200


# --- where the token comes from -----------------------------------------------------------


async def test_stream_accepts_query_token(client: httpx.AsyncClient, customer_s1: str) -> None:
    response = await client.get("/api/sessions/s1/events", params={"token": customer_s1})
    assert response.json() == {"role": "customer", "subject": "s1"}
    assert_403(await client.get("/api/sessions/s2/events", params={"token": customer_s1}))


async def test_stream_accepts_cookie(
    client: httpx.AsyncClient, settings: Settings, customer_s1: str
) -> None:
    response = await client.get(
        "/api/sessions/s1/events", headers=cookies({CUSTOMER_COOKIE_NAME: customer_s1})
    )
    assert response.json() == {"role": "customer", "subject": "s1"}


async def test_stream_accepts_bearer_too(client: httpx.AsyncClient, agent_a1: str) -> None:
    response = await client.get("/api/sessions/s1/events", headers=bearer(agent_a1))
    assert response.json() == {"role": "agent", "subject": "a1"}


async def test_ordinary_routes_ignore_query_and_cookie(
    client: httpx.AsyncClient, customer_s1: str
) -> None:
    assert_401(await client.get("/api/sessions/s1", params={"token": customer_s1}))
    assert_401(
        await client.get("/api/sessions/s1", headers=cookies({CUSTOMER_COOKIE_NAME: customer_s1}))
    )
    assert_401(
        await client.post(
            "/api/sessions/s1/messages", headers=cookies({CUSTOMER_COOKIE_NAME: customer_s1})
        )
    )


async def test_explicit_bad_query_token_is_401_even_with_a_good_cookie(
    client: httpx.AsyncClient, customer_s1: str
) -> None:
    response = await client.get(
        "/api/sessions/s1/events",
        params={"token": "garbage"},
        headers=cookies({CUSTOMER_COOKIE_NAME: customer_s1}),
    )
    assert_401(response)


async def test_bad_cookie_is_401(client: httpx.AsyncClient) -> None:
    assert_401(await client.get("/any/events", headers=cookies({CUSTOMER_COOKIE_NAME: "garbage"})))


async def test_with_both_cookies_the_first_valid_wins_agent_first(
    client: httpx.AsyncClient, customer_s1: str, agent_a1: str
) -> None:
    both = {CUSTOMER_COOKIE_NAME: customer_s1, AGENT_COOKIE_NAME: agent_a1}
    response = await client.get("/any/events", headers=cookies(both))
    assert response.json() == {"role": "agent", "subject": "a1"}
    stale_agent = {CUSTOMER_COOKIE_NAME: customer_s1, AGENT_COOKIE_NAME: "expired-garbage"}
    response = await client.get("/any/events", headers=cookies(stale_agent))
    assert response.json() == {"role": "customer", "subject": "s1"}


async def test_set_auth_cookie_is_httponly_and_samesite(client: httpx.AsyncClient) -> None:
    response = await client.post("/login/customer/s1")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{CUSTOMER_COOKIE_NAME}=")
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "path=/" in lowered
    agent = await client.post("/login/agent/a1")
    assert agent.headers["set-cookie"].startswith(f"{AGENT_COOKIE_NAME}=")


async def test_set_auth_cookie_refuses_service_tokens(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="service"):
        await client.post("/login/service/orders")


# --- names ------------------------------------------------------------------------------


async def test_invalid_session_name_is_422_with_a_good_token(
    client: httpx.AsyncClient, agent_a1: str, lookups: list[str]
) -> None:
    for name in ("a:b", "*", "x" * 65, "s1%0A"):
        response = await client.get(f"/api/sessions/{name}", headers=bearer(agent_a1))
        assert response.status_code == 422, name
    assert lookups == []


async def test_invalid_session_name_without_token_is_401(client: httpx.AsyncClient) -> None:
    assert_401(await client.get("/api/sessions/a:b"))


def test_openapi_documents_the_token_locations(settings: Settings) -> None:
    schema = build_app(settings, []).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert {s.get("name") for s in schemes.values()} >= {
        "token",
        CUSTOMER_COOKIE_NAME,
        AGENT_COOKIE_NAME,
    }
