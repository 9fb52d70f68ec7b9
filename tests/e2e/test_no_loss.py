"""Nothing lost (issue 5), against real processes: redis-server and both services.

Every test starts its own deployment (its own env, its own redis-server) and stops it.
Events are published through the HTTP publish API with a service token; followers read the
real SSE streams and resume with ``Last-Event-ID`` like a browser does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

import httpx
import pytest

from tests.support.deployment import (
    start_deployment,
    stop_deployment,
)
from tests.support.no_loss import (
    BASE_ENV,
    agent_stream,
    deployed,
    new_session,
    numbers,
    open_until_ok,
    publish,
    session_stream,
    wait_count,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

# --- 1. the seam ------------------------------------------------------------------------------

SEAM_EVENTS = 10_000
SEAM_EVERY = 100


async def test_the_seam_drop_and_resume_every_100_events_is_exact() -> None:
    with deployed() as d:
        async with httpx.AsyncClient(timeout=10) as http:
            name = await new_session(http, d)

            async def publisher() -> None:
                async with httpx.AsyncClient(timeout=10) as pub:
                    for n in range(SEAM_EVENTS):
                        await publish(pub, d.chatbot, d, "session", name, n)

            got: list[int] = []
            resets = 0
            last_id: str | None = None
            connections = 0
            # The first stream is open before the first publish: nothing precedes it.
            stream = await session_stream(d, d.workbench, name).start()
            task = asyncio.create_task(publisher())
            deadline = time.monotonic() + 120
            try:
                while len(got) < SEAM_EVENTS:
                    assert time.monotonic() < deadline, f"stuck at {len(got)} events"
                    connections += 1
                    want = min(SEAM_EVENTS, len(got) + SEAM_EVERY)
                    already = len(got)
                    await wait_count(stream, want - already, deadline)
                    await stream.close()
                    got += numbers(stream.events)
                    resets += len(stream.of_type("reset"))
                    last_id = stream.last_id
                    assert last_id is not None
                    if len(got) < SEAM_EVENTS:
                        stream = await session_stream(d, d.workbench, name, last_id).start()
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await stream.close()
            assert resets == 0
            # A connection may take a few more than 100 before the client drops it.
            assert connections >= SEAM_EVENTS // SEAM_EVERY // 2
            dupes = len(got) - len(set(got))
            missing = sorted(set(range(SEAM_EVENTS)) - set(got))
            assert (missing[:20], dupes) == ([], 0)
            assert got == list(range(SEAM_EVENTS))


# --- 2. away longer than the history ---------------------------------------------------------


async def test_a_client_away_longer_than_the_history_gets_reset_then_live() -> None:
    with deployed(SSE_HISTORY_LENGTH="50") as d:
        async with httpx.AsyncClient(timeout=10) as http:
            name = await new_session(http, d)
            stream = await session_stream(d, d.workbench, name).start()
            await publish(http, d.chatbot, d, "session", name, 0)
            await stream.wait_type("n", n=0)
            await stream.close()
            last_id = stream.last_id
            assert last_id is not None
            for n in range(1, 501):
                await publish(http, d.chatbot, d, "session", name, n)
            resumed = await session_stream(d, d.workbench, name, last_id).start()
            try:
                await resumed.wait_type("reset")
                await publish(http, d.chatbot, d, "session", name, 501)
                await resumed.wait_type("n", n=501)
                types = [e.type for e in resumed.events]
                assert types[0] == "reset", types[:5]
                # No silent partial replay of the trimmed history: after the reset, live.
                assert numbers(resumed.events) == [501], numbers(resumed.events)[:10]
                reset = resumed.events[0]
                assert reset.id is not None  # the browser moves its cursor past the gap
            finally:
                await resumed.close()


# --- 3. Redis restarted empty ----------------------------------------------------------------


async def test_redis_restarted_empty_while_a_client_is_away_gives_reset() -> None:
    with deployed() as d:
        assert d.redis.appendonly is False  # restart(empty=True) really loses everything
        async with httpx.AsyncClient(timeout=10) as http:
            # The agent stream: it needs no session in the store (which an empty Redis lost).
            stream = await agent_stream(d, d.workbench, "a1").start()
            for n in range(5):
                await publish(http, d.chatbot, d, "agent", "a1", n)
            await stream.wait_type("n", n=4)
            await stream.close()
            last_id = stream.last_id
            assert last_id is not None
            assert "," in last_id

            d.redis.restart(empty=True)

            # Both services reconnect; publishes that answer with an id reached Redis.
            async def redis_back() -> bool:
                for base in (d.chatbot, d.workbench):
                    ready = await http.get(f"{base}/readyz")
                    if ready.status_code != 200:
                        return False
                return True

            deadline = time.monotonic() + 15
            while not await redis_back():
                assert time.monotonic() < deadline, "services did not see Redis come back"
                await asyncio.sleep(0.05)  # between two polls

            resumed = await open_until_ok(
                lambda: agent_stream(d, d.workbench, "a1", last_id), time.monotonic() + 10
            )
            try:
                await resumed.wait_type("reset", timeout=5)
                await publish(http, d.chatbot, d, "agent", "a1", 100)
                await resumed.wait_type("n", n=100)
                assert resumed.events[0].type == "reset", [e.type for e in resumed.events]
            finally:
                await resumed.close()


# --- 4. redis-server SIGKILLed and restarted (AOF) mid-stream -------------------------------

OUTAGE_EVENTS = 1_000


async def test_redis_killed_and_restarted_with_aof_loses_nothing() -> None:
    redis = RedisServer(appendonly=True)
    d = start_deployment(redis=redis, env=BASE_ENV)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            name = await new_session(http, d)
            published: list[str] = []
            restarted = asyncio.Event()

            async def publisher() -> None:
                async with httpx.AsyncClient(timeout=10) as pub:
                    for n in range(OUTAGE_EVENTS):
                        published.append(await publish(pub, d.chatbot, d, "session", name, n))
                        await asyncio.sleep(0.004)  # the steady rate, not a wait

            got: list[int] = []
            reconnects = 0
            stream = await session_stream(d, d.workbench, name).start()
            task = asyncio.create_task(publisher())
            deadline = time.monotonic() + 28
            try:
                while len(published) < 300:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)  # poll
                redis.kill()
                while len(published) < 500:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)  # poll
                redis.restart()
                restarted.set()
                while True:
                    seen = numbers(stream.events)
                    if len(got) + len(seen) >= OUTAGE_EVENTS and task.done():
                        break
                    assert time.monotonic() < deadline, (
                        f"{len(got) + len(seen)} of {OUTAGE_EVENTS} after {reconnects} reconnects"
                    )
                    if stream.ended:
                        got += numbers(stream.events)
                        last_id = stream.last_id
                        await stream.close()
                        reconnects += 1
                        stream = await open_until_ok(
                            functools.partial(session_stream, d, d.workbench, name, last_id),
                            deadline,
                        )
                        continue
                    with contextlib.suppress(AssertionError):
                        await stream.wait_for(lambda _e: False, timeout=0.2)
                await task
                got += numbers(stream.events)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                await stream.close()
            outage = [i for i, p in enumerate(published) if p == ""]
            assert outage, "no publish hit the outage: the kill came too late"
            dupes = sorted({n for n in got if got.count(n) > 1})
            missing = sorted(set(range(OUTAGE_EVENTS)) - set(got))
            assert (missing, dupes) == ([], []), {
                "missing": missing[:30],
                "duplicated": dupes[:30],
                "outbox ids": (outage[0], outage[-1], len(outage)),
                "reconnects": reconnects,
            }
            assert got == list(range(OUTAGE_EVENTS))
    finally:
        stop_deployment(d)
