"""The desk across real processes: automatic assignment from two replicas at once, and an
agent lost with its replica (SIGKILL) whose chats go to an agent elsewhere or back to the
queue's front, each customer told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

import httpx
import pytest

from infrastructure.auth.tokens import Role
from tests.support.deployment import Deployment, start_deployment, stop_deployment
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e

DESK_ENV = {
    "ASSIGNMENT_MODE": "auto",
    "AGENT_MAX_CHATS": "3",
    "DESK_TICK_SECONDS": "0.3",
    "PRESENCE_TTL_SECONDS": "1.5",
    "AGENT_OFFLINE_GRACE_SECONDS": "1",
}


@pytest.fixture
def desk() -> Iterator[Deployment]:
    deployed = start_deployment(replicas=2, env=DESK_ENV)
    yield deployed
    stop_deployment(deployed)


async def _poll(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Ask again until ``check`` holds (a condition on another process: nothing to await)."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _agent_stream(deployment: Deployment, agent: str, replica: int) -> SseStream:
    token = deployment.token(Role.AGENT, agent)
    url = deployment.workbenches[replica].url
    return await SseStream(f"{url}/api/agents/{agent}/events?token={token}").start()


async def _new_waiting(http: httpx.AsyncClient, chatbot: str) -> tuple[str, str]:
    created = (await http.post(f"{chatbot}/api/sessions")).json()
    return created["session_name"], created["token"]


async def test_two_replicas_assign_200_escalations_to_10_agents(desk: Deployment) -> None:
    agents = [f"agent{n}" for n in range(10)]
    streams = [await _agent_stream(desk, a, n % 2) for n, a in enumerate(agents)]
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            # Every agent is online before the rush.
            async def all_online() -> bool:
                listed = (
                    await http.get(
                        f"{desk.workbench}/api/agents", headers=desk.agent_headers("agent0")
                    )
                ).json()
                return bool(sum(a["status"] == "online" for a in listed) == 10)

            await _poll(all_online)
            sessions = [await _new_waiting(http, desk.chatbots[n % 2].url) for n in range(200)]

            async def escalate(n: int, name: str, token: str) -> None:
                answer = await http.post(
                    f"{desk.chatbots[n % 2].url}/api/manual/escalate",
                    json={"session_name": name},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.status_code == 200, answer.text

            await asyncio.gather(*(escalate(n, *s) for n, s in enumerate(sessions)))

            held: dict[str, list[str]] = {}
            for agent in agents:
                answer = await http.get(
                    f"{desk.workbench}/api/agents/me/sessions", headers=desk.agent_headers(agent)
                )
                held[agent] = [s["session_name"] for s in answer.json()]
            queue = (
                await http.get(
                    f"{desk.workbench}/api/sessions", headers=desk.agent_headers("agent0")
                )
            ).json()
        finally:
            for stream in streams:
                await stream.close()
    assigned = [name for names in held.values() for name in names]
    assert len(assigned) == 30
    assert max(len(names) for names in held.values()) == 3
    assert len(set(assigned)) == 30  # no chat twice
    assert len(queue) == 170
    waiting = [s["session_name"] for s in queue]
    assert not set(waiting) & set(assigned)
    assert set(waiting) | set(assigned) == {name for name, _ in sessions}
    since = [datetime.fromisoformat(s["waiting_since"]) for s in queue]
    assert since == sorted(since)


async def test_an_agent_lost_with_its_replica_loses_no_customer(desk: Deployment) -> None:
    """alice (replica A) holds three chats; A is SIGKILLed. After the grace the chats are
    back at the queue's front in their order, each customer told and shown its place; bob
    (replica B) comes online and gets them."""
    alice = await _agent_stream(desk, "alice", 0)
    async with httpx.AsyncClient(timeout=30) as http:
        names: list[str] = []
        customer_streams: list[SseStream] = []
        try:
            for _ in range(3):
                name, token = await _new_waiting(http, desk.chatbot)
                customer_streams.append(
                    await SseStream(
                        f"{desk.chatbot}/api/sessions/{name}/events?token={token}"
                    ).start()
                )
                escalated = await http.post(
                    f"{desk.chatbot}/api/manual/escalate",
                    json={"session_name": name},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert escalated.json()["agent_id"] == "alice"
                names.append(name)
            desk.workbenches[0].kill()  # alice's replica: SIGKILL
            await alice.close()
            survivor = desk.workbenches[1].url

            async def back_in_queue() -> bool:
                queue = await http.get(
                    f"{survivor}/api/sessions", headers=desk.agent_headers("bob")
                )
                return [s["session_name"] for s in queue.json()] == names

            await _poll(back_in_queue)
            for place, (name, stream) in enumerate(zip(names, customer_streams, strict=True)):
                notice = await stream.wait_for(
                    lambda e: e.type == "new_message" and e.payload.get("sender") == "system",
                    timeout=10,
                    what=f"the notice to {name}",
                )
                assert "no longer available" in notice.payload["content"]
                assert "in the queue" in notice.payload["content"]
                await stream.wait_type(
                    "queue_position", timeout=10, session_name=name, position=place + 1
                )
            bob = await _agent_stream(desk, "bob", 1)
            try:

                async def bob_has_them() -> bool:
                    held = await http.get(
                        f"{survivor}/api/agents/me/sessions", headers=desk.agent_headers("bob")
                    )
                    return sorted(s["session_name"] for s in held.json()) == sorted(names)

                await _poll(bob_has_them)
                for name, stream in zip(names, customer_streams, strict=True):
                    await stream.wait_type(
                        "status_change", timeout=10, session_name=name, agent_id="bob"
                    )
            finally:
                await bob.close()
        finally:
            for stream in customer_streams:
                await stream.close()


@pytest.fixture
def quick_abandon() -> Iterator[Deployment]:
    deployed = start_deployment(env={**DESK_ENV, "CUSTOMER_ABANDON_SECONDS": "1"})
    yield deployed
    stop_deployment(deployed)


async def test_a_customer_who_left_leaves_the_queue_one_who_stays_keeps_it(
    quick_abandon: Deployment,
) -> None:
    d = quick_abandon
    watcher = await _agent_stream(d, "watcher", 0)
    await _set_away(d, "watcher")  # online agents would take the chats at once
    async with httpx.AsyncClient(timeout=30) as http:
        streams: dict[str, SseStream] = {}
        names = []
        for _ in range(2):
            name, token = await _new_waiting(http, d.chatbot)
            streams[name] = await SseStream(
                f"{d.chatbot}/api/sessions/{name}/events?token={token}"
            ).start()
            escalated = await http.post(
                f"{d.chatbot}/api/manual/escalate",
                json={"session_name": name},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert escalated.json()["status"] == "waiting_agent"
            names.append(name)
        stays, goes = names
        await streams[goes].close()  # the tab is closed
        try:
            event = await watcher.wait_type("abandoned", timeout=15, session_name=goes)
            assert event.payload["status"] == "abandoned"
            queue = (
                await http.get(f"{d.workbench}/api/sessions", headers=d.agent_headers("watcher"))
            ).json()
            assert [s["session_name"] for s in queue] == [stays]
            await streams[stays].wait_type(
                "queue_position", timeout=10, session_name=stays, position=1
            )
        finally:
            await streams[stays].close()
            await watcher.close()


async def _set_away(d: Deployment, agent: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.put(
            f"{d.workbench}/api/agents/me/status",
            json={"status": "away"},
            headers=d.agent_headers(agent),
        )
        assert answer.json()["status"] == "away"
