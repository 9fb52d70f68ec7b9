"""What /proc says about the processes a benchmark run measures: CPU, memory, file
descriptors, read and write system calls, each over a process and its descendants."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from bench.instructions import InstructionCounter
from tests.support.processes import child_pids

CLK_TCK = os.sysconf("SC_CLK_TCK")

#: The names in a :class:`CpuMeter` that are not the services under test (Redis as
#: ``procs.Stack.pids`` names it).
NOT_SERVICES = ("generator", "redis", "redis-2", "redis-3", "others")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``uvicorn --workers N`` forks its workers)."""
    tree = [pid]
    for child in child_pids(pid):
        tree += process_tree(child)
    return tree


def _proc_texts(pid: int, name: str, tree: bool = True) -> Iterator[str]:
    """``/proc/<pid>/<name>`` of ``pid`` (and its descendants with ``tree``); a
    process gone meanwhile is skipped."""
    for member in process_tree(pid) if tree else [pid]:
        try:
            yield Path(f"/proc/{member}/{name}").read_text()
        except OSError:
            continue


def _proc_field_sum(pid: int, name: str, prefixes: tuple[str, ...]) -> int:
    """The sum, over ``pid``'s tree, of the first number of the lines of
    ``/proc/<pid>/<name>`` that start with one of ``prefixes``."""
    return sum(
        int(line.split()[1])
        for text in _proc_texts(pid, name)
        for line in text.splitlines()
        if line.startswith(prefixes)
    )


def cpu_ticks(pid: int, tree: bool = True) -> int:
    """utime + stime of ``pid`` (and its descendants with ``tree``), in clock ticks."""
    total = 0
    for stat in _proc_texts(pid, "stat", tree):
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def io_syscalls(pid: int) -> int:
    """Read and write system calls (``syscr`` + ``syscw`` of /proc/<pid>/io) of ``pid``
    and its descendants: socket reads and writes included, epoll not. Unlike CPU time,
    a count the machine's load does not move."""
    return _proc_field_sum(pid, "io", ("syscr:", "syscw:"))


def machine_busy_ticks() -> int:
    """All CPUs' non-idle time (user, nice, system, irq, softirq, steal) from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants."""
    return _proc_field_sum(pid, "status", ("VmRSS:",)) * 1024


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class CpuMeter:
    """CPU share of some PIDs between ``start()`` and ``stop()``, in % of one core."""

    def __init__(
        self, pids: dict[str, int], instructions: InstructionCounter | None = None
    ) -> None:
        self.pids = pids
        #: Also counts the services' instructions over the same window (``--instructions``).
        self.instructions = instructions
        #: What that count came to, once stopped.
        self.instructions_counted: int | None = None
        self.t0 = 0.0
        self.ticks0: dict[str, int] = {}
        self.busy0 = 0
        self.syscalls0 = 0
        self.result: dict[str, float] = {}

    @staticmethod
    def _ticks(name: str, pid: int) -> int:
        # The generator's children are the servers it started: not its own CPU.
        return cpu_ticks(pid, tree=name != "generator")

    def start(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.ticks0 = {name: self._ticks(name, pid) for name, pid in self.pids.items()}
        self.busy0 = machine_busy_ticks()
        self.syscalls0 = self._server_syscalls()
        if self.instructions is not None:
            self.instructions.start()
        return self

    def _server_syscalls(self) -> int:
        return sum(io_syscalls(pid) for name, pid in self.pids.items() if name not in NOT_SERVICES)

    def server_syscalls(self) -> int:
        """The services' read + write system calls since ``start()``."""
        return self._server_syscalls() - self.syscalls0

    def read(self) -> dict[str, float]:
        """% of one core per PID, and ``others``: the rest of the machine's busy time
        (other people's tests on a shared machine make the figures noisy: it shows)."""
        wall = max(time.monotonic() - self.t0, 1e-6)
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = 100.0 * (self._ticks(name, pid) - self.ticks0[name]) / CLK_TCK / wall
            except OSError:
                out[name] = float("nan")
        busy = 100.0 * (machine_busy_ticks() - self.busy0) / CLK_TCK / wall
        out["others"] = round(max(0.0, busy - sum(v for v in out.values() if v == v)), 1)
        return out

    def stop(self) -> dict[str, float]:
        self.result = self.read()
        if self.instructions is not None:
            self.instructions_counted = self.instructions.stop()
        return self.result
