"""What the no-loss tests share (``tests/e2e/test_no_loss*.py``): a deployment with generous
limits, a session, events published through the HTTP API with a service token, and the
streams that follow them as a browser would."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import httpx

from infrastructure.auth.tokens import Role
from tests.support.deployment import Deployment, start_deployment, stop_deployment
from tests.support.sse_client import SseEvent, SseStream

#: Generous limits: these tests publish thousands of events and open many streams.
BASE_ENV = {
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "RATE_LIMIT_BURST": "100000",
    "MAX_STREAMS_PER_TOKEN": "1000",
}


@contextlib.contextmanager
def deployed(replicas: int = 1, **env: str) -> Iterator[Deployment]:
    d = start_deployment(replicas, env={**BASE_ENV, **env})
    try:
        yield d
    finally:
        stop_deployment(d)


async def new_session(http: httpx.AsyncClient, d: Deployment) -> str:
    created = await http.post(f"{d.chatbot}/api/sessions", json={})
    assert created.status_code == 201, created.text
    name: str = created.json()["session_name"]
    return name


#: By secret, not by id(d): a later deployment can reuse a freed one's id, and its
#: cached token (signed with the old secret) would get 401.
_SERVICE_HEADERS: dict[str, dict[str, str]] = {}


async def publish(
    http: httpx.AsyncClient, base: str, d: Deployment, kind: str, target: str, n: int
) -> str:
    secret = d.settings.AUTH_SECRET
    headers = _SERVICE_HEADERS.get(secret)
    if headers is None:
        headers = _SERVICE_HEADERS[secret] = d.service_headers()
    answer = await http.post(
        f"{base}/api/events/{kind}/{target}?type=n", json={"n": n}, headers=headers
    )
    assert answer.status_code == 202, (n, answer.status_code, answer.text)
    event_id: str = answer.json()["id"]
    return event_id


def numbers(events: list[SseEvent]) -> list[int]:
    return [int(e.payload["n"]) for e in events if e.type == "n"]


def agent_stream(d: Deployment, base: str, agent: str, last_id: str | None = None) -> SseStream:
    headers = {"Authorization": f"Bearer {d.token(Role.AGENT, agent)}"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return SseStream(f"{base}/api/agents/{agent}/events", headers=headers)


def session_stream(d: Deployment, base: str, name: str, last_id: str | None = None) -> SseStream:
    headers = {"Authorization": f"Bearer {d.token(Role.AGENT, 'follower')}"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return SseStream(f"{base}/api/sessions/{name}/events", headers=headers)


async def wait_count(stream: SseStream, count: int, deadline: float) -> None:
    """Until ``stream`` holds ``count`` events of type n (counted incrementally: cheap)."""
    seen = 0
    scanned = 0
    while True:
        events = stream.events
        for event in events[scanned:]:
            if event.type == "n":
                seen += 1
        scanned = len(events)
        if seen >= count:
            return
        assert not stream.ended, f"stream ended after {seen} of {count} events"
        assert time.monotonic() < deadline, f"{seen} of {count} events by the deadline"
        await asyncio.sleep(0.005)  # between two polls


async def open_until_ok(make: Callable[[], SseStream], deadline: float) -> SseStream:
    """Open a stream, retrying (a refused or failed open) until ``deadline`` (monotonic)."""
    last: BaseException | None = None
    while time.monotonic() < deadline:
        stream = make()
        try:
            return await stream.start(timeout=5)
        except (AssertionError, TimeoutError) as exc:
            last = exc
            await stream.close()
            await asyncio.sleep(0.05)  # between two attempts
    raise AssertionError(f"could not (re)open the stream before the deadline: {last!r}")
