"""The bench's process helpers: the system-call meter (/proc/<pid>/io counts what a
process does), where callgrind writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.meters import io_syscalls
from bench.procs import fresh_callgrind_out

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


def test_a_callgrind_output_starts_with_no_earlier_dump(tmp_path: Path) -> None:
    prefix = tmp_path / "results" / "callgrind-product-a"
    prefix.parent.mkdir()
    stale = [prefix.parent / f"callgrind-product-a-chatbot.out{s}" for s in ("", ".1", ".2")]
    for path in stale:
        path.write_text("totals: 1\n")
    other = prefix.parent / "callgrind-product-a-workbench.out.1"
    other.write_text("totals: 2\n")

    out_file = fresh_callgrind_out(prefix, "chatbot")

    assert out_file == stale[0]
    assert not any(path.exists() for path in stale)
    assert other.exists()  # another service's dump is not this one's
