"""A Redis Cluster on loopback: three primaries with a replica each.

Every node is a ``redis-server`` from ``PATH`` (Redis 7 or later, for sharded pub/sub:
Debian's ``apt-get install redis-server``; a missing or older binary is a failure that
says how to get one, never a skip), started with ``--cluster-enabled yes`` on a free
port and stopped by the PID it was started with. ``redis-cli --cluster create`` joins
them (the first three are the primaries, each of the last three replicates one).

Helpers for the tests: :meth:`RedisCluster.reshard` moves a slot range from one primary to
another the way ``redis-cli --cluster reshard`` does (``CLUSTER SETSLOT ... IMPORTING /
MIGRATING``, ``MIGRATE`` of every key, ``SETSLOT ... NODE``), and
:meth:`RedisCluster.kill_primary` SIGKILLs a primary and waits until its replica is
promoted and the cluster serves every slot again.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.crc import key_slot

from tests.support.processes import free_port
from tests.support.redis_server import RedisServer
from tests.support.sentinel import HOW_TO_GET_REDIS_7, require_redis_7, wait_until

NODE_TIMEOUT_MS = 1000
SLOTS = 16384


@dataclass(frozen=True)
class Shard:
    """One primary's share of the slot map, as ``CLUSTER SLOTS`` tells it."""

    primary: int
    replicas: tuple[int, ...]
    ranges: tuple[tuple[int, int], ...]


def slot_of(key: str) -> int:
    return int(key_slot(key.encode()))


class RedisCluster:
    """Three primaries, one replica each (see the module)."""

    def __init__(self, primaries: int = 3, replicas: int = 1) -> None:
        require_redis_7()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise AssertionError(f"no redis-cli on PATH: {HOW_TO_GET_REDIS_7}")
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            # A replica may take over whatever its link's age (the test kills at will).
            "--cluster-replica-validity-factor",
            "0",
            "--cluster-require-full-coverage",
            "no",
            "--cluster-allow-replica-migration",
            "no",
        ]
        self.nodes: list[RedisServer] = []
        try:
            for _ in range(primaries * (1 + replicas)):
                # The cluster bus's port is given: the default (port + 10000) may not exist.
                bus_port = ["--cluster-port", str(free_port())]
                self.nodes.append(RedisServer(extra_args=[*args, *bus_port]).start())
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            created = subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas)],
                input="yes\n",
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if created.returncode != 0:
                raise AssertionError(
                    f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}"
                )
            wait_until(self._serves_every_slot, 30, "every node sees the cluster serve all slots")
            wait_until(
                lambda: all(len(s.replicas) >= replicas for s in self.shards()),
                30,
                f"every primary has {replicas} replica(s) attached",
            )
        except BaseException:
            self.stop()
            raise

    # --- what tests read ---

    @property
    def url(self) -> str:
        """``redis+cluster://`` with two seed nodes (one seed is enough; two is the habit)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port},127.0.0.1:{self.nodes[1].port}"

    def node(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def alive(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.is_running()]

    def shards(self) -> list[Shard]:
        """The slot map as a live node tells it (``CLUSTER SLOTS``), one entry per primary."""
        with contextlib.closing(self.alive()[0].client(socket_timeout=2)) as client:
            reply = cast(Any, client).execute_command("CLUSTER SLOTS")
        found: dict[int, tuple[set[int], list[tuple[int, int]]]] = {}
        for entry in reply:
            start, end, primary, *replicas = entry
            port = int(primary[1])
            replica_ports, ranges = found.setdefault(port, (set(), []))
            replica_ports.update(int(r[1]) for r in replicas)
            ranges.append((int(start), int(end)))
        return [
            Shard(port, tuple(sorted(replicas)), tuple(sorted(ranges)))
            for port, (replicas, ranges) in sorted(found.items())
        ]

    def primary_of(self, key: str) -> int:
        """The port of the primary serving ``key``'s slot."""
        slot = slot_of(key)
        for shard in self.shards():
            if any(start <= slot <= end for start, end in shard.ranges):
                return shard.primary
        raise AssertionError(f"no primary serves slot {slot}")

    # --- changing it ---

    def reshard(self, slots: range, to_port: int) -> None:
        """Move ``slots`` (each now on one primary) to the primary on ``to_port``, with their
        keys, as ``redis-cli --cluster reshard`` does, one slot at a time."""
        target = self.node(to_port)
        with contextlib.closing(cast(Any, target.client(socket_timeout=5))) as dst:
            dst_id = cast(Any, dst).execute_command("CLUSTER MYID").decode()
            for slot in slots:
                source = self.node(self._owner(slot))
                if source.port == to_port:
                    continue
                with contextlib.closing(cast(Any, source.client(socket_timeout=5))) as src:
                    src_id = cast(Any, src).execute_command("CLUSTER MYID").decode()
                    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
                    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
                    while True:
                        keys = cast(Any, src).execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
                        if not keys:
                            break
                        src.execute_command(
                            "MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys
                        )
                    # The new owner first, then the old (which then tells its subscribers
                    # of the slot's shard channels: sunsubscribe), then everyone.
                    dst.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
                    src.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
                for shard in self.shards():
                    node = self.node(shard.primary)
                    if node.port not in (source.port, to_port):
                        with contextlib.closing(cast(Any, node.client(socket_timeout=5))) as other:
                            other.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        wait_until(
            lambda: all(self._owner(s) == to_port for s in (slots[0], slots[-1])),
            15,
            f"slots {slots.start}-{slots.stop - 1} served by {to_port}",
        )

    def kill_primary(self, port: int, seconds: float = 30) -> int:
        """SIGKILL the primary on ``port``; once its replica is promoted and every slot is
        served again, the new primary's port."""
        shard = next(s for s in self.shards() if s.primary == port)
        if not shard.replicas:
            raise AssertionError(f"primary {port} has no replica to promote")
        self.node(port).kill()

        def promoted() -> int | None:
            for candidate in shard.replicas:
                with contextlib.closing(self.node(candidate).client(socket_timeout=1)) as c:
                    try:
                        role = cast(Any, c).execute_command("ROLE")
                    except (redis.RedisError, OSError):
                        continue
                    if role[0] == b"master":
                        return candidate
            return None

        wait_until(lambda: promoted() is not None, seconds, f"a replica of {port} is promoted")
        new_port = promoted()
        assert new_port is not None
        wait_until(self._serves_every_slot, seconds, "the cluster serves every slot again")
        return new_port

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    # --- polling ---

    def _owner(self, slot: int) -> int:
        for shard in self.shards():
            if any(start <= slot <= end for start, end in shard.ranges):
                return shard.primary
        raise AssertionError(f"no primary serves slot {slot}")

    def _serves_every_slot(self) -> bool:
        for node in self.alive():
            with contextlib.closing(node.client(socket_timeout=1)) as client:
                try:
                    info = cast(Any, client).execute_command("CLUSTER INFO")
                except (redis.RedisError, OSError):
                    return False
            # redis-py parses the reply into a dict.
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != SLOTS:
                return False
        # Every live node agrees on who serves what (no dead node named as a primary).
        live = {node.port for node in self.alive()}
        return all(shard.primary in live for shard in self.shards())
