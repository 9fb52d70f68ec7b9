"""Redis and both services as real processes, shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.deployment import Deployment, start_deployment, stop_deployment


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    deployed = start_deployment()
    yield deployed
    stop_deployment(deployed)
