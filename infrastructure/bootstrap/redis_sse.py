"""The seed's ``infrastructure/bootstrap/redis_sse.py``: its names, over the bus package.

``RedisSseManager`` lives in :mod:`infrastructure.bus.redis.manager`; the process's
instance is the one of the process's container (:mod:`infrastructure.container`),
which ``init_redis_sse()`` starts (building it from Settings if the process has none)
and ``shutdown_redis_sse()`` closes.
"""

from __future__ import annotations

from infrastructure import container as process
from infrastructure.bus.history import deliver_replay, reset_event
from infrastructure.bus.redis.manager import RedisSseManager, RedisUnavailable
from infrastructure.config import Settings


async def init_redis_sse(
    settings: Settings | None = None, *, container: process.Container | None = None
) -> RedisSseManager | None:
    """Start the process's container and return its Redis manager (None with
    ``USE_REDIS_SSE=false``). ``container``: make that one the process's first (the
    app's lifespan does); without one and none installed, one is built from
    ``settings``."""
    if container is not None:
        process.install(container)
    else:
        container = process.current()
        if container is None:
            container = process.build_container(settings)
            process.install(container)
    await container.start()
    return container.manager


def get_redis_sse_manager() -> RedisSseManager | None:
    container = process.current()
    return container.manager if container is not None else None


async def shutdown_redis_sse(container: process.Container | None = None) -> None:
    """Close ``container`` (default: the process's): the bus, its Redis connections,
    the store's; it stops being the process's."""
    container = container or process.current()
    if container is not None:
        process.uninstall(container)
        await container.close()


__all__ = [
    "RedisSseManager",
    "RedisUnavailable",
    "deliver_replay",
    "get_redis_sse_manager",
    "init_redis_sse",
    "reset_event",
    "shutdown_redis_sse",
]
