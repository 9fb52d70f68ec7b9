"""Waiting on futures and stopping tasks, the way the bus needs it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any


async def wait_done(futures: Sequence[asyncio.Future[None]], seconds: float) -> None:
    """Until every future is done, or ``seconds`` have passed; none is cancelled
    (others may be waiting on the same one). Not ``asyncio.wait``, which does the same
    with a task-like coroutine and sets, at nearly twice the cost (a stream open makes
    two; see bench/README.md)."""
    pending = [future for future in futures if not future.done()]
    if not pending:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    remaining = len(pending)

    def one_done(_: object) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    def expire() -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in pending:
        future.add_done_callback(one_done)
    timer = loop.call_later(seconds, expire)
    try:
        await waiter
    finally:
        timer.cancel()
        for future in pending:
            future.remove_done_callback(one_done)


#: How long ``stop_task`` gives a cancelled task before cancelling it again.
_RECANCEL_SECONDS = 0.1


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for its end, whatever it returns or raises.

    Why not one ``cancel()`` and ``await``: on Python 3.11, ``asyncio.wait_for`` (which
    redis-py uses to send a command) swallows a cancellation that arrives as the
    operation it waits for completes (CPython gh-86296, fixed in 3.12). The subscriber
    task then carried on into a read that never ends, and ``close()`` waited for it
    forever (seen once in CI, at a test's teardown after a Redis restart). So the
    cancellation is repeated until the task is done.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_RECANCEL_SECONDS)
    if not task.cancelled():
        task.exception()  # retrieved: its outcome no longer matters
