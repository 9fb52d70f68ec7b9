"""Where the bus's Redis is, and whether its subscription still delivers.

:class:`TopologyWatch` runs beside the subscriber, every ``REDIS_TOPOLOGY_CHECK_SECONDS``
(and at once on a sentinel's ``+switch-master`` notice):

* a *delivery probe*: a ``PUBLISH`` on the process's control channel, which its own
  subscription must bring back. A probe not back within ``REDIS_DELIVERY_STALL_SECONDS``
  means delivery has stalled while the connection looks fine (the silent failure
  other hubs are known for): ``/readyz`` says not ready, and the subscriber connects
  again (resubscribe, catch-up from the Streams);
* with Sentinel, ``ROLE`` on the bus's own connection (a demoted primary that keeps
  its connections answers PING, not ``ROLE`` = master) and the sentinels' answer for
  the primary: either differing from where the bus is connected ends the connection,
  and the subscriber's reconnect asks the sentinels again.

It also says how many replicas a publish must reach (:meth:`TopologyWatch.required_acks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from infrastructure.bus.redis.pipe import CommandPipe
from infrastructure.bus.redis.sentinel import SentinelPrimary
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class TopologyWatch:
    def __init__(
        self,
        settings: Settings,
        pipe: CommandPipe,
        primary: SentinelPrimary | None,
        probe: Callable[[], Awaitable[Any]],
        restart: Callable[[str], None],
        is_up: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._pipe = pipe
        self.primary = primary
        self._probe = probe
        self._restart = restart
        self._is_up = is_up
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: When the outstanding probe was sent (None: none outstanding).
        self._probe_sent: float | None = None
        #: When a probe last came back (monotonic), and the process's start.
        self.last_delivery = time.monotonic()
        #: Where the bus is connected, as ``host:port`` (None before the first time).
        self.address: str | None = None
        #: Replicas the primary had connected at the last ``ROLE``.
        self.replicas = 0
        # Counters for /metrics and /readyz.
        self.failovers = 0
        self.switch_notices = 0
        self.stalls = 0
        self.last_error: str | None = None

    # --- what the manager tells ---

    def connected(self) -> None:
        """The subscriber is up on a (new) connection of the pipe."""
        address = f"{self._pipe.address.host}:{self._pipe.address.port}"
        if self.address is not None and address != self.address:
            self.failovers += 1
            logger.warning("Redis primary is now %s (was %s)", address, self.address)
        self.address = address
        self._note_role(self._pipe.role)
        self._probe_sent = None
        self.last_delivery = time.monotonic()

    def probe_returned(self) -> None:
        self._probe_sent = None
        self.last_delivery = time.monotonic()

    # --- what others read ---

    @property
    def stalled(self) -> bool:
        """A probe has been out longer than ``REDIS_DELIVERY_STALL_SECONDS``."""
        sent = self._probe_sent
        return (
            sent is not None
            and time.monotonic() - sent > self._settings.REDIS_DELIVERY_STALL_SECONDS
        )

    def required_acks(self, channel: str = "") -> int:
        """Replicas a publish (to any ``channel``: one server) must reach before it is
        acknowledged."""
        configured = self._settings.REDIS_MIN_REPLICAS_ACK
        if configured is not None:
            return configured
        return 1 if self.primary is not None and self.replicas > 0 else 0

    def describe(self) -> dict[str, Any]:
        """The topology, for ``/readyz``."""
        return {
            "kind": "sentinel" if self.primary is not None else "single",
            "primary": self.address,
            "replicas": self.replicas,
            "required_acks": self.required_acks(),
            "failovers": self.failovers,
            "seconds_since_delivery": round(time.monotonic() - self.last_delivery, 3),
        }

    # --- running ---

    async def start(self) -> None:
        if self.primary is not None:
            await self.primary.check_known()  # a master name nobody knows: fail at start
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-topology-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)
        if self.primary is not None:
            await self.primary.close()

    def _notice(self, message: str) -> None:
        self.switch_notices += 1
        logger.warning("sentinel: +switch-master %s", message)
        self._wake.set()

    async def _run(self) -> None:
        listener = None
        if self.primary is not None:
            listener = asyncio.create_task(self.primary.listen_for_switches(self._notice))
        try:
            interval = self._settings.REDIS_TOPOLOGY_CHECK_SECONDS
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
                self._wake.clear()
                if self._is_up():
                    try:
                        await self.check()
                    except (RedisError, OSError) as exc:
                        # The subscriber meets a dead connection itself.
                        self.last_error = repr(exc)
        finally:
            if listener is not None:
                await stop_task(listener)

    async def check(self) -> None:
        """One check (see the module)."""
        if self._probe_sent is None:
            self._probe_sent = time.monotonic()
            await self._probe()
        elif self.stalled:
            self.stalls += 1
            self._probe_sent = None
            self._restart("delivery stalled: the probe did not come back")
            return
        if self.primary is None:
            return
        role = await self._pipe.execute("ROLE")
        if not role or role[0] != b"master":
            self._restart(f"{self.address} is no longer the primary (ROLE {role[0]!r})")
            return
        self._note_role(role)
        named = await self.primary.resolve()
        if f"{named.host}:{named.port}" != self.address:
            self._restart(f"the sentinels name {named.host}:{named.port} as the primary")

    def _note_role(self, role: list[Any] | None) -> None:
        if role and role[0] == b"master" and len(role) > 2:
            self.replicas = len(role[2])
