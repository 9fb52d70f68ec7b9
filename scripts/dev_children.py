"""run_dev's children: start them in their own process group, tied to run_dev's life (Linux),
and stop them (SIGTERM, a bounded wait, then SIGKILL), each by the PID it started; and the
signals run_dev waits on (handlers only set flags; the main loop waits on the wakeup fd)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_SECONDS = 10.0


def log(message: str) -> None:
    print(f"[run_dev] {message}", flush=True)


# --- signals: handlers only set flags; the main loop waits on the wakeup fd -----------------


@dataclass
class Signals:
    stop_requested: signal.Signals | None = None
    _read_fd: int = -1
    _write_fd: int = -1

    def install(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_stop)
        # A dying child wakes the main loop at once.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested is None:
            self.stop_requested = signal.Signals(signum)

    def wait(self, timeout: float) -> None:
        """Block until a signal arrives or ``timeout`` passes (never longer)."""
        readable, _, _ = select.select([self._read_fd], [], [], max(timeout, 0.0))
        if readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read_fd, 512):
                    pass


# --- children --------------------------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up in the parent: the child, between fork and exec, only calls it.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1
_PARENT_PID = os.getpid()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if run_dev itself dies (Linux), so that even a
    SIGKILLed run_dev leaves nothing behind."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != _PARENT_PID:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        """Send SIGTERM (once) if it still runs; :meth:`reap` waits for it."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for it to exit, then SIGKILL it."""
        try:
            self.proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.pid}) ignored SIGTERM: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def stop_all(children: list[Child], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM to all of them at once, then one shared bounded wait, then SIGKILL."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.reap(deadline)


def spawn(name: str, cmd: list[str], env: Mapping[str, str], log_path: Path | None) -> Child:
    log_file = log_path.open("ab") if log_path is not None else None
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log_file,  # None: the services' logs go to this terminal
        stderr=subprocess.STDOUT if log_file is not None else None,
        # Own process group: a Ctrl-C in the terminal reaches run_dev only, which then stops
        # the children in order (services first, Redis last).
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    log(f"started {name} (pid {proc.pid})")
    return Child(name, proc, log_file)
