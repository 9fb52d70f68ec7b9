"""Real processes for tests: free ports, polling with a deadline, uvicorn services.

Nothing here waits with a bare sleep: every wait polls a condition until a deadline and
fails with a description of what it was waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

#: The repository root (``tests/support/processes.py`` -> ``.``).
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a listener could bind ``host:port`` (nobody holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        # No /proc: fall back to signal 0.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # Field 3 is the state; the command name (field 2) may hold spaces, so split after ')'.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux ``/proc``)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def _describe(predicate: object, description: str | None) -> str:
    if description:
        return description
    return getattr(predicate, "__name__", repr(predicate))


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.05,
    description: str | None = None,
) -> object:
    """Call ``predicate`` until it returns something truthy; return that value.

    An exception from the predicate counts as "not yet" and is reported if the deadline
    passes. Raises :class:`AssertionError` naming what was awaited on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(
                f"timed out after {timeout:.1f}s waiting for {_describe(predicate, description)}"
                f"{detail}"
            )
        time.sleep(min(interval, remaining))  # the pause between two polls, not the wait


async def async_wait_until(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 10.0,
    interval: float = 0.05,
    description: str | None = None,
) -> object:
    """Async :func:`wait_until`: the predicate may be a plain or an async callable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(
                f"timed out after {timeout:.1f}s waiting for {_describe(predicate, description)}"
                f"{detail}"
            )
        await asyncio.sleep(min(interval, remaining))  # between two polls


def tail(path: Path, max_chars: int = 4000) -> str:
    """The end of a log file, for failure messages."""
    try:
        data = path.read_bytes()
    except OSError:
        return "<no output>"
    text = data[-max_chars:].decode("utf-8", "replace")
    return text if text.strip() else "<no output>"


class ServiceProcess:
    """``python -m uvicorn <app>`` as a real process on a loopback port.

    >>> svc = ServiceProcess("products.ai_chatbot.main:app", env={"REDIS_URL": url})
    >>> svc.start(); httpx.get(svc.url + "/healthz"); svc.stop()

    stdout and stderr go to a temporary log file (never a pipe that could fill up and block
    the service); :meth:`output` reads it, and start failures quote its tail.
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        health_path: str = "/healthz",
        cwd: Path | None = None,
        command: Sequence[str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.app = app
        #: Run the command under this one (the benchmark's valgrind): same PID.
        self.wrapper = list(wrapper)
        #: Another server than uvicorn (the benchmark's nginx peer): its whole command
        #: line; ``app`` then only names it in messages.
        self.command = list(command) if command is not None else None
        self.env = dict(env or {})
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.health_path = health_path
        self.cwd = cwd or REPO_ROOT
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="service-"))
        self.log_path = self._log_dir / "output.log"
        # The log (and a benchmark's callgrind output) lives as long as this object:
        # what a failing test needs is in its message (``output()``), and a test run
        # must not leave a folder in /tmp per service it started.
        weakref.finalize(self, shutil.rmtree, self._log_dir, ignore_errors=True)
        self._log_file: IO[bytes] | None = None
        # The record (issue 21): a SQLite file of this process's own unless the test shares
        # one (a deployment does), never the repository's .run/.
        self.env.setdefault(
            "DATABASE_URL", f"sqlite+aiosqlite:///{self._log_dir / 'record.sqlite3'}"
        )
        # Attachments likewise (a deployment gives both services one folder).
        self.env.setdefault("ATTACHMENTS_DIR", str(self._log_dir / "attachments"))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.app} is not started")
        return self._proc.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.app} is not started")
        return self._proc

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        return tail(self.log_path, max_chars=1_000_000)

    def start(self) -> ServiceProcess:
        if self.is_running():
            raise RuntimeError(f"{self.app} is already running (pid {self.pid})")
        env = {**os.environ, **self.env}
        cmd = [
            *self.wrapper,
            *(
                self.command
                or [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    self.app,
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ]
            ),
        ]
        self._log_file = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_healthy(self) -> None:
        proc = self.process
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        with httpx.Client(timeout=1.0) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    raise AssertionError(
                        f"{self.app} exited with code {code} before {self.health_path} answered;"
                        f" output:\n{tail(self.log_path)}"
                    )
                try:
                    response = client.get(self.url + self.health_path)
                except httpx.HTTPError as exc:
                    last_error = repr(exc)
                else:
                    if response.status_code == 200:
                        return
                    last_error = f"HTTP {response.status_code}"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.app} on {self.url} did not answer 200 on {self.health_path}"
                        f" within {self.startup_timeout:.0f}s ({last_error}); output:\n"
                        f"{tail(self.log_path)}"
                    )
                time.sleep(min(0.05, remaining))  # between two polls

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        self._signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            proc.wait(timeout=timeout)
        self._close_log()
        return proc.returncode

    def kill(self, timeout: float = 10.0) -> int | None:
        """SIGKILL and wait for the process to be gone."""
        proc = self._proc
        if proc is None:
            return None
        self._signal(signal.SIGKILL)
        proc.wait(timeout=timeout)
        self._close_log()
        return proc.returncode

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
