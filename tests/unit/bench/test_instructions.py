"""The benchmark's instruction counter, on a real child process under callgrind: it
counts the window it is asked to, and nothing outside it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.instructions import InstructionCounter, callgrind_wrapper, missing_tools

#: Sums range(n) for each n it reads, and answers with the sum.
CHILD = """
import sys
for line in sys.stdin:
    total = 0
    for i in range(int(line)):
        total += i
    print(total, flush=True)
"""


@pytest.fixture
def child(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    why = missing_tools()
    if why is not None:
        pytest.fail(f"{why} (or run `make sysdeps`)")
    out_file = tmp_path / "callgrind.out"
    with subprocess.Popen(
        [*callgrind_wrapper(out_file), sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:  # closes the pipes, waits for the child
        try:
            yield proc, out_file
        finally:
            proc.kill()


def _work(proc: subprocess.Popen[str], n: int) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(f"{n}\n")
    proc.stdin.flush()
    assert int(proc.stdout.readline()) == n * (n - 1) // 2


def test_counts_the_window_and_only_it(child: tuple[subprocess.Popen[str], Path]) -> None:
    proc, out_file = child
    _work(proc, 10)  # it is up, and has run the loop's code once (not counted)
    counter = InstructionCounter({proc.pid: out_file})

    counter.start()
    _work(proc, 100_000)
    once = counter.stop()

    _work(proc, 300_000)  # outside any window: not counted

    counter.start()
    _work(proc, 200_000)
    twice = counter.stop()

    counter.start()
    idle = counter.stop()

    assert once > 1_000_000  # some tens of instructions per loop turn
    assert 1.8 < twice / once < 2.2  # twice the work, twice the count
    assert idle < once / 50
