"""The services' user-space instructions, counted by valgrind's callgrind.

CPU shares on this machine drift 1.5-2x from one day to the next, and a change
worth 7 % of the work per message is lost in the noise of a same-run A/B. An
instruction count does not drift: the same build doing the same work counts the
same within about 0.3 %, however busy the machine. ``python -m bench --instructions``
runs each Python service under callgrind, with counting off, and counts only
while a scenario measures (the same window as its CPU meter).

What it does not see: the kernel's share (the system calls, which the
``syscr``/``syscw`` rows count) and waiting. Under callgrind a service runs some
30-50 times slower, so the scenarios are run at small sizes (``CALLGRIND`` in
sizes.py) and its latencies mean nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

#: The programs this needs, from Debian's (or any distribution's) valgrind package.
NEEDED = ("valgrind", "callgrind_control")
_TOTALS = re.compile(rb"^totals: (\d+)", re.M)


def missing_tools() -> str | None:
    """Why ``--instructions`` cannot run here, or ``None``."""
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found: install valgrind (apt-get install valgrind)"
    return None


def callgrind_wrapper(out_file: Path) -> list[str]:
    """The command prefix that runs a program under callgrind, counting nothing until
    :meth:`InstructionCounter.start`. The PID stays the program's."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
    ]


class InstructionCounter:
    """Instructions the processes run under :func:`callgrind_wrapper` execute between
    ``start()`` and ``stop()``, summed."""

    def __init__(self, processes: dict[int, Path] | None = None, timeout: float = 60.0) -> None:
        #: PID -> the ``--callgrind-out-file`` it was started with.
        self.processes: dict[int, Path] = {}
        self.timeout = timeout
        self._dumps: dict[int, int] = {}
        for pid, out_file in (processes or {}).items():
            self.add(pid, out_file)

    def add(self, pid: int, out_file: Path) -> None:
        self.processes[pid] = out_file
        self._dumps[pid] = 0

    def start(self) -> InstructionCounter:
        for pid in self.processes:
            _control(pid, "--instr=on")
        return self

    def stop(self) -> int:
        """Stop counting; what was counted since ``start()``."""
        total = 0
        for pid, out_file in self.processes.items():
            _control(pid, "--instr=off")
            # A dump writes what was counted since the last one to <out>.<n>, then
            # starts again from zero.
            _control(pid, "--dump")
            self._dumps[pid] += 1
            total += self._read_totals(Path(f"{out_file}.{self._dumps[pid]}"))
        return total

    def _read_totals(self, dump: Path) -> int:
        # callgrind_control returns once the command is queued; the file follows.
        deadline = time.monotonic() + self.timeout
        while True:
            found = _TOTALS.search(dump.read_bytes()) if dump.exists() else None
            if found is not None:
                return int(found[1])
            if time.monotonic() > deadline:
                raise TimeoutError(f"callgrind wrote no totals to {dump}")
            time.sleep(0.05)  # a file written by another process: polled, with a deadline


def _control(pid: int, command: str) -> None:
    done = subprocess.run(
        ["callgrind_control", command, str(pid)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 or "OK" not in done.stdout:
        raise RuntimeError(f"callgrind_control {command} {pid}: {done.stdout}{done.stderr}")
