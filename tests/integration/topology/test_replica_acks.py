"""A publish is acknowledged only once enough replicas have it (``WAIT``); until then it
waits in the outbox, delivered once, and is acknowledged when a replica comes."""

from __future__ import annotations

import orjson

from infrastructure.bus.event import Event
from infrastructure.bus.listener import Listener
from infrastructure.container import build_container
from tests.support.auth import make_settings
from tests.support.processes import async_wait_until
from tests.support.redis_server import RedisServer

CHANNEL = "sse:session:acks"


async def test_an_event_no_replica_confirmed_waits_then_is_acknowledged(
    redis_server: RedisServer,
) -> None:
    settings = make_settings(
        REDIS_URL=redis_server.url,
        REDIS_MIN_REPLICAS_ACK=1,
        REDIS_REPLICA_ACK_TIMEOUT_MS=2000,  # a loaded machine acks slowly
        REDIS_RECONNECT_MAX_SECONDS=0.2,
    )
    container = build_container(settings)
    await container.start()
    manager = container.manager
    assert manager is not None
    listener = Listener([CHANNEL], 100, owner=manager.hub)
    await manager.attach(listener)
    replica = None
    try:
        event = await manager.publish(CHANNEL, {"n": 1})
        assert event.id == ""  # not acknowledged: no replica has it
        assert manager.not_replicated == 1
        assert manager.outbox_size() == 1
        # It is on the primary all the same, and delivered once.
        got = [i for i in await listener.next_batch() if isinstance(i, Event)]
        assert [orjson.loads(e.body)["n"] for e in got] == [1]

        replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(redis_server.port)])
        replica.start()
        await async_wait_until(
            lambda: manager.outbox_size() == 0, timeout=20, description="outbox flushed"
        )

        def in_sync() -> bool:
            with replica.client() as client:
                info = client.info("replication")
            return bool(info.get("master_link_status") == "up")

        # The replication link is up (not merely started) before the next publish's WAIT.
        await async_wait_until(in_sync, timeout=20, description="replica in sync")
        later = await manager.publish(CHANNEL, {"n": 2})
        assert later.id  # a replica confirms it now
        with redis_server.client() as client:
            assert client.xlen(manager.keys.stream(CHANNEL)) == 2  # never written twice
    finally:
        manager.detach(listener)
        await container.close()
        if replica is not None:
            replica.stop()
