from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis

from infrastructure.auth.dependencies import SessionStreamAccess
from infrastructure.auth.limits import (
    JSONTooDeep,
    StreamSlots,
    StreamSlotsDep,
    check_json_depth,
    hold_while,
    require_json_depth,
)
from infrastructure.auth.rate_limit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimitedPrincipal,
    RedisRateLimiter,
    enforce_rate_limit,
    too_many,
)
from infrastructure.auth.tokens import Principal, Role, issue_token
from infrastructure.config import Settings
from tests.support.auth import make_settings
from tests.support.processes import async_wait_until, free_port
from tests.support.redis_server import RedisServer


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
    assert slots.open_for(principal("t1")) == 2
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
    assert slots.open_for(principal("t1")) == 0


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


async def _numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def test_hold_while_releases_at_the_end_and_on_close() -> None:
    slots = StreamSlots(max_per_token=2, max_total=2)
    assert [i async for i in hold_while(slots.acquire(principal("t")), _numbers(3))] == [0, 1, 2]
    assert slots.total == 0

    stream = hold_while(slots.acquire(principal("t")), _numbers(100))
    assert await stream.__anext__() == 0
    assert slots.total == 1
    await stream.aclose()  # what Starlette does when the client goes away
    assert slots.total == 0


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
            yield b": ping\n\n"

        return StreamingResponse(hold_while(slot, body()), media_type="text/event-stream")

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


# --- rate limit in Redis (a real redis-server) -----------------------


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    # The shared real redis-server of the test suite (tests/support/redis_server.py).
    server = RedisServer()
    server.start()
    yield server.port
    server.stop()


async def test_redis_bucket_shared_between_limiters(redis_port: int) -> None:
    client = Redis(host="127.0.0.1", port=redis_port)
    try:
        key = f"k-{time.monotonic_ns()}"
        # Two "replicas" share one bucket.
        a = RedisRateLimiter(client, per_minute=60, burst=3, key_prefix="test:rl:")
        b = RedisRateLimiter(client, per_minute=60, burst=3, key_prefix="test:rl:")
        results = [await a.hit(key), await b.hit(key), await a.hit(key), await b.hit(key)]
        assert [r.allowed for r in results] == [True, True, True, False]
        assert 0 < results[-1].retry_after <= 1.0
        ttl = await client.pttl(f"test:rl:{key}")
        assert 0 < ttl <= 4000  # forgotten once it would be full again
        assert (await a.hit(f"{key}-other")).allowed
    finally:
        await client.aclose()


async def test_redis_bucket_refills(redis_port: int) -> None:
    client = Redis(host="127.0.0.1", port=redis_port)
    try:
        limiter = RedisRateLimiter(client, per_minute=600, burst=1, key_prefix="test:rl:")
        key = f"r-{time.monotonic_ns()}"
        assert (await limiter.hit(key)).allowed
        refused = await limiter.hit(key)
        assert not refused.allowed
        # Redis's clock decides (the bucket lives there): poll until the bucket has a
        # token again, within what Retry-After promised plus slack. A refused hit takes
        # no token, so polling does not delay the refill.

        async def allowed_again() -> bool:
            return (await limiter.hit(key)).allowed

        await async_wait_until(
            allowed_again, timeout=refused.retry_after + 2.0, description="bucket refilled"
        )
    finally:
        await client.aclose()


async def test_redis_unreachable_falls_back_to_memory_quickly() -> None:
    client = Redis(host="127.0.0.1", port=free_port())  # nothing listens there
    clock = FakeClock()
    try:
        fallback = MemoryRateLimiter(per_minute=60, burst=1, clock=clock)
        limiter = RedisRateLimiter(
            client, per_minute=60, burst=1, fallback=fallback, cooldown_seconds=5, clock=clock
        )
        started = time.monotonic()
        assert await limiter.hit("k") == RateDecision(True)
        assert limiter.using_fallback
        assert not (await limiter.hit("k")).allowed
        # No message waits for redis-py's reconnect attempts.
        assert time.monotonic() - started < 2 * limiter.timeout_seconds + 0.5
        clock.now += 6
        assert not limiter.using_fallback  # tries Redis again after the cool-down
    finally:
        await client.aclose()


async def test_redis_back_after_cooldown(redis_port: int) -> None:
    clock = FakeClock()
    client = Redis(host="127.0.0.1", port=redis_port)
    try:
        limiter = RedisRateLimiter(
            client, per_minute=60, burst=1, key_prefix="test:rl:", clock=clock
        )
        limiter._redis_down_until = clock.now + 1  # as after a failure
        key = f"c-{time.monotonic_ns()}"
        assert (await limiter.hit(key)).allowed  # served by the fallback
        assert await client.exists(f"test:rl:{key}") == 0
        clock.now += 2
        assert (await limiter.hit(key)).allowed  # Redis again: its own, fresh bucket
        assert await client.exists(f"test:rl:{key}") == 1
    finally:
        await client.aclose()


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


def test_json_too_deep_is_a_value_error_and_422() -> None:
    assert issubclass(JSONTooDeep, ValueError)
    with pytest.raises(HTTPException) as info:
        require_json_depth({"a": {"b": {}}}, 2)
    assert info.value.status_code == 422
    require_json_depth({"a": {"b": {}}}, 3)
