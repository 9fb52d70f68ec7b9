from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse

from infrastructure.auth.dependencies import SessionStreamAccess
from infrastructure.auth.limits import (
    JSONTooDeep,
    StreamSlots,
    StreamSlotsDep,
    check_json_depth,
)
from infrastructure.auth.rate_limit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimitedPrincipal,
    enforce_rate_limit,
    too_many,
)
from infrastructure.auth.tokens import Principal, Role, issue_token
from infrastructure.config import Settings
from tests.support.auth import make_settings


def principal(token_id: str, role: Role = Role.CUSTOMER, subject: str = "s1") -> Principal:
    return Principal(role=role, subject=subject, token_id=token_id)


# --- StreamSlots ---------------------------------------------------------------------------


def test_per_token_limit_is_429_with_retry_after() -> None:
    slots = StreamSlots(max_per_token=2, max_total=10, retry_after_seconds=7)
    held = [slots.acquire(principal("t1")), slots.acquire(principal("t1"))]
    with pytest.raises(HTTPException) as info:
        slots.acquire(principal("t1"))
    assert info.value.status_code == 429
    assert info.value.headers == {"Retry-After": "7"}
    # Another token is unaffected.
    other = slots.acquire(principal("t2"))
    assert slots.total == 3
    held[0].release()
    slots.acquire(principal("t1")).release()
    other.release()
    held[1].release()
    assert slots.total == 0


def test_total_limit_is_503_with_retry_after() -> None:
    slots = StreamSlots(max_per_token=5, max_total=3)
    held = [slots.acquire(principal(f"t{i}")) for i in range(3)]
    with pytest.raises(HTTPException) as info:
        slots.acquire(principal("t9"))
    assert info.value.status_code == 503
    assert info.value.headers is not None
    assert int(info.value.headers["Retry-After"]) > 0
    for slot in held:
        slot.release()
    assert slots.total == 0


def test_release_is_idempotent_and_a_context_manager() -> None:
    slots = StreamSlots(max_per_token=1, max_total=1)
    with slots.acquire(principal("t1")) as slot:
        assert slots.total == 1
    assert slot.released
    slot.release()
    slot.release()
    assert slots.total == 0


async def test_async_context_manager() -> None:
    slots = StreamSlots(max_per_token=1, max_total=1)
    async with slots.acquire(principal("t1")):
        assert slots.total == 1
    assert slots.total == 0


def test_a_dropped_slot_is_released_on_collection() -> None:
    slots = StreamSlots(max_per_token=1, max_total=5)
    slot = slots.acquire(principal("t1"))
    del slot
    gc.collect()
    assert slots.total == 0
    slots.acquire(principal("t1")).release()


def test_from_settings() -> None:
    slots = StreamSlots.from_settings(make_settings(MAX_STREAMS_PER_TOKEN=3, MAX_STREAMS_TOTAL=9))
    assert (slots.max_per_token, slots.max_total) == (3, 9)


def test_invalid_limits() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StreamSlots(0, 5)


def stream_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings

    @app.get("/api/sessions/{session_name}/events")
    async def events(
        session_name: str, principal: SessionStreamAccess, slots: StreamSlotsDep
    ) -> StreamingResponse:
        slot = slots.acquire(principal)  # before the response starts: a real 429 / 503

        async def body() -> AsyncIterator[bytes]:
            with slot:  # released when the stream ends
                yield b": ping\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    return app


async def test_stream_limit_through_http_other_tokens_still_served() -> None:
    settings = make_settings(MAX_STREAMS_PER_TOKEN=2, MAX_STREAMS_TOTAL=100)
    app = stream_app(settings)
    greedy = issue_token(settings, Role.CUSTOMER, "s1")
    polite = issue_token(settings, Role.CUSTOMER, "s2")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        # Nothing held: a finished stream gives its slot back.
        for _ in range(5):
            response = await c.get("/api/sessions/s1/events", params={"token": greedy})
            assert response.status_code == 200
        slots: StreamSlots = app.state.stream_slots
        assert slots.total == 0
        # Two streams of the greedy token still open (held as if by long-lived responses).
        held = [slots.acquire(principal_of(settings, greedy)) for _ in range(2)]
        refused = await c.get("/api/sessions/s1/events", params={"token": greedy})
        assert refused.status_code == 429
        assert refused.headers["retry-after"].isdigit()
        served = await c.get("/api/sessions/s2/events", params={"token": polite})
        assert served.status_code == 200
        assert served.text == ": ping\n\n"
        for slot in held:
            slot.release()


def principal_of(settings: Settings, token: str) -> Principal:
    from infrastructure.auth.tokens import verify_token

    return verify_token(settings, token)


# --- rate limit -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_bucket_allows_burst_then_refuses_then_refills() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(per_minute=60, burst=3, clock=clock)
    assert [(await limiter.hit("k")).allowed for _ in range(3)] == [True] * 3
    refused = await limiter.hit("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0)
    assert (await limiter.hit("other")).allowed  # per key
    clock.now += 1.0
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    clock.now += 3600  # refills up to the burst, not beyond
    assert [(await limiter.hit("k")).allowed for _ in range(4)] == [True, True, True, False]


def test_memory_bucket_forgets_least_recently_used_keys() -> None:
    limiter = MemoryRateLimiter(per_minute=60, burst=1, max_keys=2, clock=FakeClock())
    for key in ("a", "b", "c"):
        limiter.hit_sync(key)
    assert not limiter.hit_sync("c").allowed
    assert limiter.hit_sync("a").allowed  # "a" was forgotten: a fresh bucket


async def test_enforce_rate_limit_raises_429_with_retry_after() -> None:
    limiter = MemoryRateLimiter(per_minute=6, burst=1, clock=FakeClock())
    p = principal("t1")
    await enforce_rate_limit(limiter, p)
    with pytest.raises(HTTPException) as info:
        await enforce_rate_limit(limiter, p)
    assert info.value.status_code == 429
    assert info.value.headers == {"Retry-After": "10"}
    assert info.value.detail == "too many messages: try again in 10 s"


@pytest.mark.parametrize(("wait", "said"), [(0.001, 1), (0.5, 1), (1.0, 1), (2.01, 3)])
def test_retry_after_is_whole_seconds_rounded_up_at_least_one(wait: float, said: int) -> None:
    refusal = too_many("messages", RateDecision(False, wait))
    assert refusal.headers == {"Retry-After": str(said)}
    assert refusal.detail == f"too many messages: try again in {said} s"


async def test_an_overflow_bucket_takes_what_the_first_refuses() -> None:
    clock = FakeClock()
    messages = MemoryRateLimiter(per_minute=6, burst=1, clock=clock)
    escalations = MemoryRateLimiter(per_minute=2, burst=1, clock=clock)
    p = principal("t1")
    await enforce_rate_limit(messages, p)
    await enforce_rate_limit(messages, p, overflow=escalations)  # refused, then taken
    with pytest.raises(HTTPException) as info:
        await enforce_rate_limit(messages, p, overflow=escalations)
    # The overflow's refusal is the one reported: its wait, its name.
    assert info.value.headers == {"Retry-After": "30"}
    assert info.value.detail == "too many requests for a human: try again in 30 s"
    assert (await escalations.hit("other")).allowed


async def test_rate_limited_route_is_429() -> None:
    settings = make_settings(RATE_LIMIT_PER_MINUTE=60, RATE_LIMIT_BURST=2)
    app = FastAPI()
    app.state.settings = settings

    @app.post("/api/sessions/{session_name}/messages")
    async def message(session_name: str, principal: RateLimitedPrincipal) -> dict[str, str]:
        return {"ok": "yes"}

    first = issue_token(settings, Role.CUSTOMER, "s1")
    second = issue_token(settings, Role.CUSTOMER, "s1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        url = "/api/sessions/s1/messages"
        codes = [
            (await c.post(url, headers={"Authorization": f"Bearer {first}"})).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        limited = await c.post(url, headers={"Authorization": f"Bearer {first}"})
        assert limited.headers["retry-after"] == "1"
        # Per token: another token has its own bucket.
        other = await c.post(url, headers={"Authorization": f"Bearer {second}"})
        assert other.status_code == 200
        # The token is checked before the bucket: no token is 401, not 429.
        assert (await c.post(url)).status_code == 401


# --- JSON depth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "depth"),
    [
        (1, 0),
        ("x", 0),
        (None, 0),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 1),
        ({"a": {"b": [1, 2]}}, 3),
        ([[], [[]], {"k": [{}]}], 4),
        ((1, (2,)), 2),
    ],
)
def test_json_depth_boundaries(obj: object, depth: int) -> None:
    check_json_depth(obj, depth)
    if depth > 0:
        with pytest.raises(JSONTooDeep):
            check_json_depth(obj, depth - 1)


def test_very_deep_json_does_not_blow_the_stack() -> None:
    obj: object = 0
    for _ in range(200_000):
        obj = [obj]
    with pytest.raises(JSONTooDeep):
        check_json_depth(obj, 32)
    check_json_depth(obj, 300_000)


def test_json_too_deep_is_a_value_error() -> None:
    assert issubclass(JSONTooDeep, ValueError)
    with pytest.raises(ValueError, match="deeper than 2"):
        check_json_depth({"a": {"b": {}}}, 2)
    check_json_depth({"a": {"b": {}}}, 3)
