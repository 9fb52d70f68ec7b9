"""The README's journey with both services as processes on a real Redis Cluster (three
primaries with a replica each): the customer escalates, an agent takes over, they talk,
the chat closes; ``/readyz`` and ``/metrics`` tell the cluster's topology; the desk's keys
share one slot and the session channel's history is where its own slot is."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest

from infrastructure.sessions.record_log import record_key
from tests.e2e.test_journey import run_journey
from tests.support.cluster import RedisCluster, slot_of
from tests.support.deployment import Deployment, start_deployment, stop_deployment
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def on_cluster() -> Iterator[tuple[Deployment, RedisCluster]]:
    cluster = RedisCluster()
    try:
        deployed = start_deployment(replicas=2, env={"REDIS_URL": cluster.url})
        try:
            yield deployed, cluster
        finally:
            stop_deployment(deployed)
    finally:
        cluster.stop()


async def test_the_journey_on_a_redis_cluster(on_cluster: tuple[Deployment, RedisCluster]) -> None:
    d, cluster = on_cluster
    chat_a, chat_b = (p.url for p in d.chatbots)
    work_a, work_b = (p.url for p in d.workbenches)
    # Customer and agent each write to one replica and follow another.
    await run_journey(chat_a, chat_b, work_b, work_a, d)

    # Every key of the desk lives in the {desk} slot, on one primary.
    desk_primary = cluster.primary_of(record_key("sse:", clustered=True))
    with contextlib.closing(cast(Any, cluster.node(desk_primary).client())) as client:
        assert client.xlen(record_key("sse:", clustered=True)) > 0
        desk_keys = [k.decode() for k in client.keys("sse:{desk}:*")]
    assert any(":store:sess:{" in k for k in desk_keys), desk_keys
    assert slot_of("sse:{desk}:store:queue:waiting") == slot_of("{desk}")


async def test_a_chat_closes_on_a_redis_cluster(
    on_cluster: tuple[Deployment, RedisCluster],
) -> None:
    """Escalate, take over, talk, close: the customer, on another replica, sees it closed."""
    d, _ = on_cluster
    chat_a, chat_b = (p.url for p in d.chatbots)
    work_a = d.workbenches[0].url
    bob = d.agent_headers("bob")
    async with httpx.AsyncClient(timeout=10) as http:
        created = (await http.post(f"{chat_a}/api/sessions", json={})).json()
        name, customer = created["session_name"], {"Authorization": f"Bearer {created['token']}"}
        stream = await SseStream(
            f"{chat_b}/api/sessions/{name}/events?token={created['token']}"
        ).start()
        try:
            asked = await http.post(
                f"{chat_a}/api/sessions/{name}/messages",
                json={"content": "转人工"},
                headers=customer,
            )
            assert asked.json()["escalated"] is True
            took = await http.post(
                f"{work_a}/api/sessions/{name}/takeover", json={"agent_id": "bob"}, headers=bob
            )
            assert took.status_code == 200, took.text
            said = await http.post(
                f"{work_a}/api/sessions/{name}/messages",
                json={"agent_id": "bob", "content": "Solved, closing."},
                headers=bob,
            )
            assert said.status_code == 201, said.text
            closed = await http.post(
                f"{work_a}/api/sessions/{name}/close", json={"agent_id": "bob"}, headers=bob
            )
            assert closed.status_code == 200, closed.text
            assert closed.json()["status"] == "closed"
            await stream.wait_type("new_message", sender="agent", content="Solved, closing.")
            await stream.wait_type("status_change", status="closed")
        finally:
            await stream.close()


async def test_readyz_and_metrics_tell_the_cluster(
    on_cluster: tuple[Deployment, RedisCluster],
) -> None:
    d, cluster = on_cluster
    primaries = {f"127.0.0.1:{s.primary}" for s in cluster.shards()}
    async with httpx.AsyncClient(timeout=10) as http:
        for url in (d.chatbot, d.workbench):
            ready = await http.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            topology = ready.json()["topology"]
            assert topology["kind"] == "cluster", topology
            assert {s["primary"] for s in topology["shards"]} == primaries
            assert all(s["connected"] and len(s["replicas"]) == 1 for s in topology["shards"])
            assert sum(s["slots"] for s in topology["shards"]) == 16384
            assert topology["connections"] == 3
            metrics = (await http.get(f"{url}/metrics")).text
            for address in primaries:
                assert f'redis_primary{{address="{address}"' in metrics
                assert f'redis_bus_connection_up{{address="{address}"' in metrics
            assert "redis_slot_map_changes_total" in metrics
            assert "redis_failovers_total" in metrics
