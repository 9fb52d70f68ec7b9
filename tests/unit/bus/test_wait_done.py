"""The manager's bounded wait on shared futures: ends when all are done or at the
deadline, and never cancels them (other opens may be waiting on the same ones)."""

from __future__ import annotations

import asyncio

import pytest

from infrastructure.bus.waiting import wait_done as _wait_done


async def test_it_ends_when_every_future_is_done() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    waiting = asyncio.create_task(_wait_done([first, second], 60))
    first.set_result(None)
    await asyncio.sleep(0)  # one loop turn: the wait must still be on
    assert not waiting.done()
    second.set_result(None)
    await asyncio.wait_for(waiting, 5)


async def test_it_ends_at_the_deadline_and_cancels_nothing() -> None:
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await asyncio.wait_for(_wait_done([shared], 0.01), 5)
    assert not shared.done()


async def test_a_cancelled_wait_leaves_the_futures_alone() -> None:
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(_wait_done([shared], 60))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    assert not shared.done()


@pytest.mark.parametrize("already_done", [0, 1, 2])
async def test_nothing_pending_returns_at_once(already_done: int) -> None:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[None]] = [loop.create_future() for _ in range(already_done)]
    for future in futures:
        future.set_result(None)
    step = _wait_done(futures, 60)
    # Finished at its first step: it never suspended, nor set a timer.
    with pytest.raises(StopIteration):
        step.send(None)
