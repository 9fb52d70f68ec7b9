"""The ``stack`` fixture: Redis (``redis_server``) and both services as real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.browser.harness import Stack, start_stack
from tests.support.redis_server import RedisServer


@pytest.fixture
def stack(redis_server: RedisServer) -> Iterator[Stack]:
    with start_stack(redis_server) as deployed:
        yield deployed
