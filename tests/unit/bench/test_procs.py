"""The bench's system-call meter: /proc/<pid>/io counts what a process does."""

from __future__ import annotations

import subprocess
import sys

from bench.procs import io_syscalls

_CHILD = """
import os, sys
null = os.open(os.devnull, os.O_WRONLY)
os.write(1, b"ready\\n")
os.read(0, 3)
for _ in range(100):
    os.write(null, b"x")
os.write(1, b"done\\n")
os.read(0, 3)
"""


def test_io_syscalls_counts_the_writes_a_process_makes() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == b"ready\n"
            before = io_syscalls(child.pid)
            child.stdin.write(b"go\n")
            child.stdin.flush()
            assert child.stdout.readline() == b"done\n"
            counted = io_syscalls(child.pid) - before
        finally:
            child.kill()
    # 100 writes to /dev/null, the "done" line and the read of "go": 102.
    assert counted == 102, counted


def test_io_syscalls_of_a_gone_process_is_zero() -> None:
    assert io_syscalls(2**22 + 12345) == 0  # above any pid_max: no such process
