"""A Redis Sentinel deployment on loopback: one primary, one replica, three sentinels.

Every process is a ``redis-server`` from ``PATH`` (Redis 7 or later: Debian's
``apt-get install redis-server``), started on free ports and stopped by the PID it was
started with. Sentinels run ``redis-server <conf> --sentinel`` with a short
``down-after-milliseconds``, so a SIGKILLed primary is replaced within seconds.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from tests.support.processes import free_port, tail
from tests.support.redis_server import RedisServer

MASTER = "mymaster"
DOWN_AFTER_MS = 1000

HOW_TO_GET_REDIS_7 = (
    "the Sentinel and Cluster tests need redis-server 7 or later on PATH: on Debian/Ubuntu "
    "`apt-get install redis-server` (`make sysdeps` does it as root); elsewhere see "
    "https://redis.io/docs/latest/operate/oss_and_stack/install/"
)


def require_redis_7() -> str:
    """The ``redis-server`` on PATH; a failure saying how to get one if it is missing or
    older than 7."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise AssertionError(f"no redis-server on PATH: {HOW_TO_GET_REDIS_7}")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"v=(\d+)\.", out.stdout)
    if found is None or int(found.group(1)) < 7:
        raise AssertionError(f"{binary} is {out.stdout.strip()!r}: {HOW_TO_GET_REDIS_7}")
    return binary


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)  # between two polls


class SentinelProcess:
    def __init__(self, binary: str, monitor_port: int, work_dir: Path) -> None:
        self.port = free_port()
        self.dir = work_dir / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {monitor_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.log = self.dir / "sentinel.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, str(self.conf), "--sentinel"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"sentinel on {self.port} exited; log:\n{tail(self.log)}")
        with contextlib.closing(self.client()) as client:
            try:
                return bool(client.ping())
            except (redis.RedisError, OSError):
                return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


class SentinelDeployment:
    """One primary, one replica, three sentinels (see the module)."""

    def __init__(self) -> None:
        binary = require_redis_7()
        self.work_dir = Path(tempfile.mkdtemp(prefix="redis-sentinel-test-"))
        self.primary = RedisServer().start()
        self.replica = RedisServer(
            extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)]
        ).start()
        self.sentinels: list[SentinelProcess] = []
        try:
            for _ in range(3):
                self.sentinels.append(SentinelProcess(binary, self.primary.port, self.work_dir))
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def _wait_ready(self) -> None:
        """Until the replica is in sync and every sentinel knows the replica and the
        other two sentinels (so that a failover can be agreed)."""
        for sentinel in self.sentinels:
            wait_until(sentinel.answers, 15, f"sentinel on {sentinel.port} answers")

        def replica_synced() -> bool:
            with contextlib.closing(self.primary.client()) as client:
                role = cast(Any, client).execute_command("ROLE")
            return len(role[2]) == 1

        wait_until(replica_synced, 15, "the replica is connected to the primary")

        def sentinels_agree() -> bool:
            for sentinel in self.sentinels:
                with contextlib.closing(sentinel.client()) as client:
                    state: Any = client.sentinel_master(MASTER)
                    if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                        return False
            return True

        wait_until(sentinels_agree, 30, "every sentinel sees the replica and 2 other sentinels")

    def primary_port(self) -> int:
        """Where the sentinels say the primary is now."""
        with contextlib.closing(self.sentinels[0].client()) as client:
            reply: Any = cast(Any, client).execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER
            )
        return int(reply[1])

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.stop()
        self.primary.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)
