"""A small SSE client for tests: reads a stream in the background, parses events.

Parsing follows the WHATWG rules that matter here (``id:``, ``data:``, comment
lines, blank line ends an event), so a framing mistake makes tests fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    id: str | None
    data: str
    event: str = "message"

    @property
    def envelope(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value

    @property
    def type(self) -> str:
        return str(self.envelope.get("type"))

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = self.envelope.get("payload", {})
        return value


@dataclass
class SseStream:
    """Follows one URL; ``events`` keeps everything received, in order."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[SseEvent] = field(default_factory=list)
    comments: int = 0
    last_id: str | None = None
    status: int | None = None
    response_headers: httpx.Headers | None = None
    ended: bool = False
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, timeout: float = 10.0) -> SseStream:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(timeout):
            await self._opened.wait()
        if self.status != 200:
            raise AssertionError(f"stream {self.url} answered {self.status}")
        return self

    async def _run(self) -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self.status = response.status_code
                self.response_headers = response.headers
                self._opened.set()
                if response.status_code != 200:
                    return
                await self._parse(response)
        except (httpx.HTTPError, OSError):
            pass
        finally:
            self.ended = True
            self._opened.set()
            self._changed.set()

    async def _parse(self, response: httpx.Response) -> None:
        event_id: str | None = None
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    if event_id is not None:
                        self.last_id = event_id
                    self.events.append(SseEvent(event_id, "\n".join(data)))
                    self._changed.set()
                event_id, data = None, []
            elif line.startswith(":"):
                self.comments += 1
                self._changed.set()
            elif line.startswith("id:"):
                event_id = line[3:].lstrip(" ")
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))

    async def wait_for(
        self, predicate: Callable[[SseEvent], bool], timeout: float = 5.0, what: str = ""
    ) -> SseEvent:
        """The first event (received so far or later) matching ``predicate``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    if self.ended:
                        break
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass
        seen = [(e.type, e.payload) for e in self.events][-10:]
        raise AssertionError(
            f"no event {what or predicate} on {self.url} in {timeout}s; last: {seen}"
        )

    async def wait_type(self, event_type: str, timeout: float = 5.0, **payload: Any) -> SseEvent:
        def matches(event: SseEvent) -> bool:
            return event.type == event_type and all(
                event.payload.get(k) == v for k, v in payload.items()
            )

        return await self.wait_for(matches, timeout, f"{event_type} {payload}")

    def of_type(self, event_type: str) -> list[SseEvent]:
        return [e for e in self.events if e.type == event_type]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
