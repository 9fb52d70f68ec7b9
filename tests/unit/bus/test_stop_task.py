"""stop_task: a task that swallows a cancellation (as Python 3.11's wait_for can) still ends."""

from __future__ import annotations

import asyncio

from infrastructure.bus.waiting import stop_task


async def test_a_task_that_swallows_the_first_cancellation_is_stopped() -> None:
    started = asyncio.Event()
    swallowed = asyncio.Event()
    forever = asyncio.Event()  # never set: a read that never ends

    async def stubborn() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # carries on, as after gh-86296
        await forever.wait()

    task = asyncio.create_task(stubborn())
    await started.wait()
    await asyncio.wait_for(stop_task(task), timeout=5)
    assert swallowed.is_set()
    assert task.cancelled()


async def test_a_task_that_failed_or_finished_is_left_as_it_is() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fail())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.wait({failed, done})
    await stop_task(failed)  # the exception is retrieved, not raised
    await stop_task(done)
    assert isinstance(failed.exception(), RuntimeError)
    assert done.result() is None
