"""What the Sentinel and Cluster tests share: the deployments, on real servers, stopped after
each test (the settings that make a bus notice a failover in time: ``failover_settings`` in
``tests/support/auth.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import RedisCluster
from tests.support.sentinel import SentinelDeployment


@pytest.fixture
def sentinel() -> Iterator[SentinelDeployment]:
    deployment = SentinelDeployment()
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def cluster() -> Iterator[RedisCluster]:
    deployment = RedisCluster()
    try:
        yield deployment
    finally:
        deployment.stop()
