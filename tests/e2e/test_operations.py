"""Readiness, metrics and the memory mode, on real processes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.deployment import CHATBOT_APP, Deployment, start_deployment, stop_deployment
from tests.support.processes import ServiceProcess, free_port, wait_until
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e


@pytest.fixture
def own() -> Iterator[Deployment]:
    """A deployment of this test's own: it kills Redis."""
    deployed = start_deployment()
    yield deployed
    stop_deployment(deployed)


def test_readyz_is_503_with_the_reason_while_redis_is_down(own: Deployment) -> None:
    ready = httpx.get(f"{own.chatbot}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["mode"] == "redis"
    own.redis.kill()
    wait_until(
        lambda: httpx.get(f"{own.workbench}/readyz", timeout=10).status_code == 503,
        timeout=10,
        description="/readyz turns 503 once Redis is gone",
    )
    body = httpx.get(f"{own.workbench}/readyz", timeout=10).json()
    assert body["ready"] is False
    assert any("Redis" in reason for reason in body["reasons"])
    assert httpx.get(f"{own.workbench}/healthz", timeout=10).status_code == 200  # still alive
    own.redis.restart()
    wait_until(
        lambda: httpx.get(f"{own.workbench}/readyz", timeout=10).status_code == 200,
        timeout=15,
        description="/readyz is 200 again once Redis is back",
    )


async def test_metrics_count_streams_events_and_the_mode(own: Deployment) -> None:
    http = httpx.AsyncClient(timeout=10)
    created = (await http.post(f"{own.chatbot}/api/sessions", json={})).json()
    name, token = created["session_name"], created["token"]
    stream = await SseStream(f"{own.chatbot}/api/sessions/{name}/events?token={token}").start()
    try:
        published = await http.post(
            f"{own.chatbot}/api/events/session/{name}?type=parcel_shipped",
            json={"order": 1},
            headers=own.service_headers(),
        )
        assert published.status_code == 202
        await stream.wait_type("parcel_shipped")
        metrics = (await http.get(f"{own.chatbot}/metrics")).text
        assert 'sse_open_streams{service="ai_chatbot"} 1.0' in metrics
        assert (
            'sse_events_published_total{service="ai_chatbot",type="parcel_shipped"} 1.0' in metrics
        )
        assert (
            'sse_events_delivered_total{service="ai_chatbot",type="parcel_shipped"} 1.0' in metrics
        )
        assert 'sse_bus_mode{mode="redis",service="ai_chatbot"} 1.0' in metrics
        assert "redis_reconnects_total" in metrics
        assert "sse_listeners_dropped_total" in metrics
    finally:
        await stream.close()
        await http.aclose()


async def test_memory_mode_serves_one_process_without_redis() -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    service = ServiceProcess(
        CHATBOT_APP,
        env={"USE_REDIS_SSE": "false", "REDIS_URL": nowhere, "AUTH_SECRET": "m" * 48},
    ).start()
    http = httpx.AsyncClient(timeout=10)
    try:
        ready = (await http.get(f"{service.url}/readyz")).json()
        assert ready["mode"] == "memory"
        assert ready["ready"] is True
        created = (await http.post(f"{service.url}/api/sessions", json={})).json()
        name, token = created["session_name"], created["token"]
        stream = await SseStream(f"{service.url}/api/sessions/{name}/events?token={token}").start()
        try:
            answer = await http.post(
                f"{service.url}/api/sessions/{name}/messages",
                json={"content": "hello"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 201
            await stream.wait_type("new_message", sender="customer", content="hello")
        finally:
            await stream.close()
    finally:
        await http.aclose()
        service.stop()
