"""The fast path answers exactly as the documented FastAPI routes do.

The services are built as they run (memory mode: no I/O), twice: with their fast
routes, and with none (every request through FastAPI). Each request below goes to
both; the answers must match. The counters prove which path served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from starlette.datastructures import Headers

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from infrastructure.web.fast_path import FastRequest, FastRoute, ServiceApp, query_pairs
from products.agent_workbench.app import create_app as create_workbench
from products.ai_chatbot.app import create_app as create_chatbot
from tests.support.auth import make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings(USE_REDIS_SSE=False, MAX_BODY_BYTES=2048, MAX_JSON_DEPTH=4)


class Pair:
    """One service twice: ``fast`` (as deployed) and ``plain`` (fast routes removed)."""

    def __init__(self, fast: ServiceApp, plain: ServiceApp) -> None:
        self.fast, self.plain = fast, plain
        self.fast_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fast), base_url="http://test"
        )
        self.plain_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=plain), base_url="http://test"
        )

    async def both(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, ...]:
        return (
            await self.fast_client.request(method, url, **kwargs),
            await self.plain_client.request(method, url, **kwargs),
        )


@pytest.fixture(params=["chatbot", "workbench"])
async def pair(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Pair]:
    factory: Callable[[Settings], Any] = (
        create_chatbot if request.param == "chatbot" else create_workbench
    )
    fast, plain = factory(settings), factory(settings)
    assert isinstance(fast, ServiceApp)
    assert isinstance(plain, ServiceApp)
    assert fast.fast_routes, "the services register fast routes"
    plain.fast_routes = ()
    async with AsyncExitStack() as stack:
        for app in (fast, plain):
            await stack.enter_async_context(app.router.lifespan_context(app))
        result = Pair(fast, plain)
        stack.push_async_callback(result.fast_client.aclose)
        stack.push_async_callback(result.plain_client.aclose)
        for app in (fast, plain):
            await app.state.store.create("s1")
        yield result


def token(settings: Settings, role: Role, subject: str) -> str:
    return issue_token(settings, role, subject)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def comparable(response: httpx.Response) -> tuple[int, Any, str | None]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body, response.headers.get("www-authenticate")


async def test_a_valid_publish_is_served_fast_and_answers_like_fastapi(
    pair: Pair, settings: Settings
) -> None:
    service = token(settings, Role.SERVICE, "svc")
    fast, plain = await pair.both(
        "POST", "/api/events/session/s1?type=bench", json={"n": 1}, headers=bearer(service)
    )
    assert fast.status_code == plain.status_code == 202
    assert fast.headers["content-type"] == plain.headers["content-type"] == "application/json"
    assert fast.json().keys() == plain.json().keys() == {"id", "channel"}
    assert fast.json()["channel"] == plain.json()["channel"]
    assert fast.json()["id"]
    assert plain.json()["id"]
    assert pair.fast.fast_outcomes == {"served": 1, "declined": 0}
    assert pair.plain.fast_outcomes == {"served": 0, "declined": 0}


@pytest.mark.parametrize(
    "payload",
    [
        {"a": {"b": {"c": {}}}},  # as deep as MAX_JSON_DEPTH (4) allows
        {"text": "[[[[{{{{ brackets in a string are not nesting", "l": [1, [2]]},
    ],
    ids=["at the limit", "brackets in strings"],
)
async def test_a_payload_within_the_depth_limit_is_served_fast(
    pair: Pair, settings: Settings, payload: dict[str, Any]
) -> None:
    service = token(settings, Role.SERVICE, "svc")
    fast, plain = await pair.both(
        "POST", "/api/events/session/s1", json=payload, headers=bearer(service)
    )
    assert fast.status_code == plain.status_code == 202, (fast.text, plain.text)
    assert pair.fast.fast_outcomes == {"served": 1, "declined": 0}


REFUSED_PUBLISHES: list[tuple[str, str, dict[str, Any]]] = [
    ("no token", "/api/events/session/s1", {"json": {"n": 1}}),
    ("customer token", "/api/events/session/s1", {"json": {"n": 1}, "as": Role.CUSTOMER}),
    ("bad kind", "/api/events/sessions/s1", {"json": {"n": 1}, "as": Role.SERVICE}),
    ("bad name", "/api/events/session/a.b", {"json": {"n": 1}, "as": Role.SERVICE}),
    ("bad type", "/api/events/session/s1?type=Bad!", {"json": {}, "as": Role.SERVICE}),
    ("empty type", "/api/events/session/s1?type=", {"json": {}, "as": Role.SERVICE}),
    ("a list", "/api/events/session/s1", {"json": [1, 2], "as": Role.SERVICE}),
    ("not JSON", "/api/events/session/s1", {"content": b"{nope", "as": Role.SERVICE}),
    (
        "too deep",
        "/api/events/session/s1",
        {"json": {"a": {"b": {"c": {"d": {}}}}}, "as": Role.SERVICE},
    ),
    (
        "too deep, in a list",
        "/api/events/session/s1",
        {"json": {"a": [[[[1]]]]}, "as": Role.SERVICE},
    ),
    ("too big", "/api/events/session/s1", {"json": {"x": "y" * 4000}, "as": Role.SERVICE}),
    (
        "form body",
        "/api/events/session/s1",
        {"content": b"a=1", "type": "application/x-www-form-urlencoded", "as": Role.SERVICE},
    ),
]


@pytest.mark.parametrize(
    ("case", "url", "spec"), REFUSED_PUBLISHES, ids=[c[0] for c in REFUSED_PUBLISHES]
)
async def test_a_refused_publish_gets_the_fastapi_answer(
    pair: Pair, settings: Settings, case: str, url: str, spec: dict[str, Any]
) -> None:
    kwargs: dict[str, Any] = {"headers": {}}
    if "as" in spec:
        kwargs["headers"] = bearer(token(settings, spec["as"], "s1"))
    if "json" in spec:
        kwargs["content"] = orjson.dumps(spec["json"])
        kwargs["headers"]["content-type"] = "application/json"
    if "content" in spec:
        kwargs["content"] = spec["content"]
        kwargs["headers"]["content-type"] = spec.get("type", "application/json")
    fast, plain = await pair.both("POST", url, **kwargs)
    assert 400 <= fast.status_code < 500, (case, fast.status_code, fast.text)
    assert comparable(fast) == comparable(plain), case
    assert pair.fast.fast_outcomes["served"] == 0, f"{case}: the fast path must not accept it"


async def test_refused_streams_get_the_fastapi_answer(pair: Pair, settings: Settings) -> None:
    customer = token(settings, Role.CUSTOMER, "s1")
    other = token(settings, Role.CUSTOMER, "s2")
    agent = token(settings, Role.AGENT, "a1")
    cases = [
        ("/api/sessions/s1/events", {}),
        ("/api/sessions/s1/events?token=garbage", {}),
        ("/api/sessions/s1/events", {"headers": bearer("garbage")}),
        ("/api/sessions/s1/events", {"headers": bearer(other)}),
        ("/api/sessions/nope/events", {"headers": bearer(agent)}),
        ("/api/sessions/s1/events", {"headers": {"Authorization": "Basic xyz"}}),
        (f"/api/sessions/s1/events?token={customer}&last_event_id=%FF", {}),
    ]
    if any(r.path.startswith("/api/agents") for r in pair.fast.fast_routes):
        cases += [
            ("/api/agents/a2/events", {"headers": bearer(agent)}),
            ("/api/agents/a1/events", {"headers": bearer(customer)}),
        ]
    for url, kwargs in cases:
        fast, plain = await pair.both("GET", url, **kwargs)
        assert 400 <= fast.status_code < 500, (url, fast.status_code, fast.text)
        assert comparable(fast) == comparable(plain), url
    assert pair.fast.fast_outcomes == {"served": 0, "declined": len(cases)}
    # A name no fast route matches never reaches one: FastAPI's 422.
    fast, plain = await pair.both("GET", "/api/sessions/a.b/events", headers=bearer(agent))
    assert fast.status_code == 422
    assert comparable(fast) == comparable(plain)


async def test_cors_requests_take_the_middleware_path(settings: Settings) -> None:
    app = create_chatbot(settings.model_copy(update={"CORS_ORIGINS": ["https://shop.example"]}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        response = await client.post(
            "/api/events/session/s1",
            json={"n": 1},
            headers={
                **bearer(token(settings, Role.SERVICE, "svc")),
                "Origin": "https://shop.example",
            },
        )
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert app.fast_outcomes == {"served": 0, "declined": 0}


def test_fast_routes_match_names_only() -> None:
    async def handler(_: object) -> Any:
        raise AssertionError

    route = FastRoute("GET", "/api/sessions/{session_name}/events", handler)
    assert route.match("GET", "/api/sessions/abc-1_X/events") == {"session_name": "abc-1_X"}
    assert route.match("POST", "/api/sessions/abc/events") is None
    assert route.match("GET", "/api/sessions/a.b/events") is None
    assert route.match("GET", "/api/sessions/" + "x" * 65 + "/events") is None
    assert route.match("GET", "/api/sessions/abc/events/") is None
    with pytest.raises(ValueError, match="plain"):
        FastRoute("GET", "/api/(.*)", handler)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "type=bench",
        "type=a&type=b",
        "token=abc.def-ghi_jkl&last_event_id=e1.1-0",
        "a=b=c",
        "flag",
        "flag=",
        "&&a=1&&",
        "=v",
        "a=%E4%BD%A0&b=x+y",
        "t=%zz",
        "name=名字",
    ],
)
def test_query_pairs_are_parse_qsl_s(query: str) -> None:
    assert query_pairs(query) == parse_qsl(query, keep_blank_values=True)


def test_a_header_is_its_first_value_as_starlette_reads_it() -> None:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", b"Bearer first"),
        (b"x-caf\xe9", b"caf\xe9"),
        (b"authorization", b"Bearer second"),
    ]
    scope: dict[str, Any] = {"type": "http", "headers": headers}

    async def receive() -> Any:
        raise AssertionError

    request = FastRequest(ServiceApp(), scope, receive, {})
    starlette_headers = Headers(scope=scope)
    for name in ("authorization", "host", "x-caf\xe9", "cookie"):
        assert request.header(name.encode("latin-1")) == starlette_headers.get(name), name
    assert request.header(b"authorization") == "Bearer first"


async def test_middleware_added_after_the_factory_sees_every_request(settings: Settings) -> None:
    """The fast path is a layer of the stack: middleware added to the app later wraps it
    (sees what the fast path serves, as well as what FastAPI serves)."""
    app = create_chatbot(settings)
    assert isinstance(app, ServiceApp)
    seen: list[str] = []

    class Recorder:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(f"{scope['method']} {scope['path']}")
            await self.inner(scope, receive, send)

    app.add_middleware(Recorder)
    service = token(settings, Role.SERVICE, "orders")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        published = await client.post(
            "/api/events/session/s1", json={"n": 1}, headers=bearer(service)
        )
        assert published.status_code == 202
        assert (await client.get("/healthz")).status_code == 200
    assert app.fast_outcomes["served"] == 1
    assert seen == ["POST /api/events/session/s1", "GET /healthz"]
