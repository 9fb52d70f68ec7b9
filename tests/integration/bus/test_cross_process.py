"""Events cross OS processes: the chatbot service runs as a real uvicorn process.

Both directions: the service publishes (its HTTP publish API) and a bus listener in
this process receives; this process publishes and the service's SSE stream delivers.
Also the service's heartbeat (``SSE_HEARTBEAT_SECONDS=0.2``) on an idle stream.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from infrastructure.auth.tokens import Role
from infrastructure.config import Settings
from tests.integration.bus.conftest import HEARTBEAT_SECONDS, BusService, bearer
from tests.support.bus_helpers import RawSseEvent, RawSseReader, numsub, one_event, running_bus
from tests.support.processes import async_wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http(chatbot_service: BusService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chatbot_service.url, timeout=10.0) as client:
        yield client


async def new_session(http: httpx.AsyncClient) -> tuple[str, str]:
    created = await http.post("/api/sessions", json={})
    assert created.status_code == 201, created.text
    body = created.json()
    return body["session_name"], body["token"]


async def test_published_by_the_service_received_here(
    chatbot_service: BusService, service_settings: Settings, http: httpx.AsyncClient
) -> None:
    assert chatbot_service.process.pid != os.getpid()
    name = f"xp-{secrets.token_hex(4)}"
    async with running_bus(service_settings) as bus:
        assert bus.mode == "redis"
        listener = await bus.open([name])
        response = await http.post(
            f"/api/events/session/{name}",
            params={"type": "parcel_shipped"},
            json={"order": 42, "items": ["a", "b"]},
            headers=bearer(service_settings, Role.SERVICE, "orders"),
        )
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["channel"] == f"sse:session:{name}"

        event = await one_event(listener)

    assert event.token == accepted["id"]
    envelope = event.envelope()
    assert envelope["type"] == "parcel_shipped"
    assert envelope["payload"] == {"order": 42, "items": ["a", "b"]}
    assert envelope["source"] == "orders"
    assert isinstance(envelope["timestamp"], int)


async def test_published_here_received_on_the_service_stream(
    chatbot_service: BusService, service_settings: Settings, http: httpx.AsyncClient
) -> None:
    name, token = await new_session(http)
    async with (
        running_bus(service_settings) as bus,
        http.stream("GET", f"/api/sessions/{name}/events", params={"token": token}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = RawSseReader(response)
        # The service answers once its listener is subscribed: nothing published now is lost.
        sent = await bus.publish(
            name, "status_change", {"session_name": name, "status": "waiting_agent"}, "tests"
        )
        received = await reader.next_event()

    assert received.id == sent.token
    assert json.loads(received.data) == sent.envelope()
    assert json.loads(received.data)["payload"] == {"session_name": name, "status": "waiting_agent"}


async def test_service_stream_resumes_from_last_event_id_and_disconnect_unsubscribes(
    chatbot_service: BusService,
    service_settings: Settings,
    http: httpx.AsyncClient,
    redis_url: str,
) -> None:
    name, token = await new_session(http)
    observer = aioredis.Redis.from_url(redis_url)
    channel = f"sse:session:{name}"
    try:
        async with running_bus(service_settings) as bus:
            sent = [await bus.publish(name, "new_message", {"n": n}, "tests") for n in range(4)]
            async with http.stream(
                "GET",
                f"/api/sessions/{name}/events",
                params={"token": token},
                headers={"Last-Event-ID": sent[1].token},
            ) as response:
                assert response.status_code == 200
                reader = RawSseReader(response)
                replayed = [await reader.next_event() for _ in range(2)]
                live = await bus.publish(name, "new_message", {"n": 4}, "tests")
                after = await reader.next_event()
                assert (await numsub(observer, [channel]))[channel] == 1
        assert [e.id for e in replayed] == [sent[2].token, sent[3].token]
        assert [json.loads(e.data)["payload"]["n"] for e in replayed] == [2, 3]
        assert after.id == live.token
        # The client went away: the service releases its listener, and with it the
        # channel's only subscription.
        await async_wait_until(
            lambda: _no_subscriber(observer, channel),
            timeout=10,
            description=f"the service to unsubscribe {channel} after the client left",
        )
    finally:
        await observer.aclose()


async def _no_subscriber(observer: aioredis.Redis, channel: str) -> bool:
    return (await numsub(observer, [channel]))[channel] == 0


async def test_idle_stream_sends_pings_and_still_delivers_the_next_event(
    chatbot_service: BusService, service_settings: Settings, http: httpx.AsyncClient
) -> None:
    name, token = await new_session(http)
    idle_for = 2.0
    async with (
        running_bus(service_settings) as bus,
        http.stream("GET", f"/api/sessions/{name}/events", params={"token": token}) as response,
    ):
        assert response.status_code == 200
        reader = RawSseReader(response)
        started = time.monotonic()
        # Stay idle for 2 s, reading whatever the service writes meanwhile: pings only.
        async with asyncio.timeout(idle_for + 10):
            while time.monotonic() - started < idle_for:
                item = await reader.next_item()
                assert not isinstance(item, RawSseEvent), f"an event on an idle stream: {item}"
        pings = [at for line, at in reader.comments if line == ": ping"]
        sent = await bus.publish(name, "new_message", {"text": "still there?"}, "tests")
        received = await reader.next_event()

    assert received.id == sent.token
    assert json.loads(received.data)["payload"] == {"text": "still there?"}
    # One ping every 0.2 s: about 10 in 2 s; at least half of them on a busy machine.
    assert len(pings) >= (idle_for / HEARTBEAT_SECONDS) / 2, pings
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    assert max(gaps) < 1.5, gaps
