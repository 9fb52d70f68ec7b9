"""The CI version of ``make soak``: 30 s of traffic on 8 channels through Redis restarts."""

from __future__ import annotations

import pytest

from bench.soak import soak

pytestmark = pytest.mark.e2e


async def test_thirty_seconds_of_redis_restarts_lose_duplicate_and_reorder_nothing() -> None:
    result = await soak(seconds=30, channels=8, rate=20, restart_every=7)
    print(result.summary())
    assert result.restarts >= 3
    assert result.published > 0
    assert (result.lost, result.duplicated, result.out_of_order) == (0, 0, 0), result.summary()
    assert result.resets == 0  # AOF kept the history: every resume was exact
