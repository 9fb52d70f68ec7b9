"""``make soak``: many channels, for a chosen time, while Redis is killed and restarted.

Publishers write numbered events through the chatbot service's publish API;
followers read each channel's stream on the workbench service and, like a
browser, reconnect with ``Last-Event-ID`` whenever their stream ends. Every
``--restart-every`` seconds redis-server is killed (SIGKILL) and started again
on the same port and data (AOF on). At the end it prints, per run: published,
delivered, lost, duplicated, out of order; the last three must be 0 (exit 1
otherwise).

    python -m bench.soak --seconds 300 --channels 50 --rate 20 --restart-every 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson

from infrastructure.auth.tokens import Role, issue_token
from tests.support.deployment import start_deployment, stop_deployment
from tests.support.processes import ServiceProcess
from tests.support.redis_server import RedisServer


@dataclass
class SoakResult:
    seconds: float
    channels: int
    restarts: int
    published: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    resets: int = 0
    reconnects: int = 0
    #: Per faulty channel: what went wrong, for diagnosis.
    faults: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.out_of_order == 0

    def summary(self) -> str:
        return (
            f"soak {self.seconds:.0f}s, {self.channels} channels, {self.restarts} Redis restarts: "
            f"published {self.published}, delivered {self.delivered}, lost {self.lost}, "
            f"duplicated {self.duplicated}, out of order {self.out_of_order} "
            f"(resets {self.resets}, stream reconnects {self.reconnects})"
            + "".join(f"\n  {fault}" for fault in self.faults[:20])
        )


@dataclass
class _Channel:
    name: str
    published: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    resets: int = 0
    reconnects: int = 0


async def soak(
    seconds: float = 30.0,
    channels: int = 10,
    rate: float = 20.0,
    restart_every: float = 8.0,
    drain_seconds: float = 20.0,
    progress: bool = False,
) -> SoakResult:
    """Run the soak against fresh processes it starts and stops itself (127.0.0.1 only)."""
    redis = RedisServer(appendonly=True)
    deployment = start_deployment(
        redis=redis,
        env={
            "SSE_HEARTBEAT_SECONDS": "2",
            "MAX_STREAMS_PER_TOKEN": "100000",
            "REDIS_RECONNECT_MAX_SECONDS": "0.5",
        },
    )
    settings = deployment.settings
    chatbot, workbench = deployment.chatbots[0], deployment.workbenches[0]
    try:
        service_token = issue_token(settings, Role.SERVICE, "soak")
        state = [_Channel(f"soak-{i}") for i in range(channels)]
        stop_publishing = asyncio.Event()
        stop_following = asyncio.Event()
        restarts = 0

        async def publish(channel: _Channel, http: httpx.AsyncClient) -> None:
            headers = {
                "Authorization": f"Bearer {service_token}",
                "Content-Type": "application/json",
            }
            interval = 1.0 / rate
            n = 0
            next_at = time.monotonic()
            while not stop_publishing.is_set():
                url = f"{chatbot.url}/api/events/agent/{channel.name}?type=n"
                try:
                    answer = await http.post(url, content=orjson.dumps({"n": n}), headers=headers)
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 202:
                    channel.published.append(n)
                    n += 1
                next_at += interval
                # Pacing: the publish rate is the point here, not a wait for a condition.
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        async def follow(channel: _Channel, http: httpx.AsyncClient) -> None:
            url = f"{workbench.url}/api/agents/{channel.name}/events"
            token = issue_token(settings, Role.AGENT, channel.name)
            last_id: str | None = None
            while not stop_following.is_set():
                headers = {"Authorization": f"Bearer {token}"}
                if last_id:
                    headers["Last-Event-ID"] = last_id
                try:
                    async with http.stream("GET", url, headers=headers) as response:
                        if response.status_code != 200:
                            raise httpx.HTTPError(f"HTTP {response.status_code}")
                        last_id = await _read(response, channel, last_id)
                except httpx.HTTPError:
                    pass
                if not stop_following.is_set():
                    channel.reconnects += 1
                    await asyncio.sleep(0.2)  # a browser's retry delay

        async def restart_redis() -> None:
            nonlocal restarts
            while not stop_publishing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_publishing.wait(), restart_every)
                if stop_publishing.is_set():
                    return
                redis.kill()
                await asyncio.to_thread(redis.restart)
                restarts += 1
                if progress:
                    print(f"  redis restarted ({restarts})", file=sys.stderr)

        limits = httpx.Limits(max_connections=4 * channels + 10)
        timeout = httpx.Timeout(10.0, read=None)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
            followers = [asyncio.create_task(follow(c, http)) for c in state]
            # Let every follower be connected before the first event.
            await _until(lambda: _followers_connected(workbench, channels), 15.0, blocking=True)
            publishers = [asyncio.create_task(publish(c, http)) for c in state]
            restarter = asyncio.create_task(restart_redis())
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_publishing.wait(), seconds)
            stop_publishing.set()
            await asyncio.gather(*publishers, restarter)
            elapsed = time.monotonic() - started
            # Drain: until every follower has its channel's last event, or the deadline.
            await _until(
                lambda: all(not c.published or c.published[-1] in c.received[-5:] for c in state),
                drain_seconds,
                raise_on_timeout=False,
            )
            stop_following.set()
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
        return _tally(state, elapsed, restarts)
    finally:
        stop_deployment(deployment)


async def _read(response: httpx.Response, channel: _Channel, last_id: str | None) -> str | None:
    event_id: str | None = None
    data: str | None = None
    async for line in response.aiter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "":
            if event_id is not None:
                last_id = event_id
            if data:
                envelope = orjson.loads(data)
                if envelope.get("type") == "n":
                    channel.received.append(int(envelope["payload"]["n"]))
                elif envelope.get("type") == "reset":
                    channel.resets += 1
            event_id = data = None
    return last_id


def _followers_connected(workbench: ServiceProcess, expected: int) -> bool:
    metrics = httpx.get(f"{workbench.url}/metrics", timeout=5).text
    for line in metrics.splitlines():
        if line.startswith("sse_open_streams{"):
            return float(line.rsplit(" ", 1)[1]) >= expected
    return False


async def _until(
    predicate: Callable[[], bool],
    seconds: float,
    raise_on_timeout: bool = True,
    blocking: bool = False,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate) if blocking else predicate():
            return
        await asyncio.sleep(0.1)  # between two polls of a condition with a deadline
    if raise_on_timeout:
        raise TimeoutError(f"condition not met within {seconds}s")


def _tally(state: list[_Channel], elapsed: float, restarts: int) -> SoakResult:
    result = SoakResult(seconds=elapsed, channels=len(state), restarts=restarts)
    for channel in state:
        published = set(channel.published)
        received = channel.received
        result.published += len(channel.published)
        result.delivered += len(received)
        result.lost += len(published - set(received))
        result.duplicated += len(received) - len(set(received))
        result.out_of_order += sum(1 for a, b in itertools.pairwise(received) if b <= a)
        result.resets += channel.resets
        result.reconnects += channel.reconnects
        lost = sorted(published - set(received))
        twice = sorted({n for n in received if received.count(n) > 1})
        back = [(a, b) for a, b in itertools.pairwise(received) if b <= a]
        if lost or twice or back:
            result.faults.append(
                f"{channel.name}: published {len(published)}, lost {lost[:10]}, "
                f"twice {twice[:10]}, went back {back[:5]}"
            )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="events/s per channel")
    parser.add_argument("--restart-every", type=float, default=15.0)
    args = parser.parse_args(argv)
    result = asyncio.run(
        soak(args.seconds, args.channels, args.rate, args.restart_every, progress=True)
    )
    print(result.summary())
    return 0 if result.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
