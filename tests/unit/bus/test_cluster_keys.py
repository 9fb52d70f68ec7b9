"""The key layout on a Redis Cluster: what shares a slot, and the slot map as read."""

from __future__ import annotations

from redis.crc import key_slot

from infrastructure.bus.redis.cluster_map import parse_slots
from infrastructure.bus.redis.publish_script import SPUBLISH_LUA, SPUBLISH_SHA, PublishCall
from infrastructure.bus.redis.streams import ChannelKeys, hash_tag
from infrastructure.sessions.record_log import record_key, store_prefix
from infrastructure.sessions.redis_keys import SessionKeys
from tests.support.auth import make_settings


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_hash_tag_follows_redis_rules() -> None:
    assert hash_tag("sse:session:a") == "sse:session:a"
    assert hash_tag("a{x}b{y}") == "x"
    assert hash_tag("a{}b") == "a{}b"  # an empty tag: the whole key
    assert hash_tag("a{x") == "a{x"


def test_a_channel_and_its_keys_share_a_slot_on_a_cluster() -> None:
    keys = ChannelKeys("sse:", cluster=True)
    for channel in ("sse:session:a", "sse:agent:alice", "sse:t{tag}x"):
        assert slot(keys.stream(channel)) == slot(channel)
        assert slot(keys.epoch(channel)) == slot(channel)
    # Two channels with one tag keep apart Streams.
    assert keys.stream("sse:a{t}") != keys.stream("sse:b{t}")


def test_one_server_keeps_its_key_layout() -> None:
    keys = ChannelKeys("sse:")
    assert keys.stream("sse:session:a") == "sse:history:{session:a}"
    assert keys.epoch("sse:session:a") == "sse:epoch:{session:a}"


def test_the_publish_script_spublishes_on_a_cluster() -> None:
    call = PublishCall(lambda c: c, lambda c: c, 10, 1000, sharded=True)
    assert call.script == SPUBLISH_LUA
    assert "redis.call('SPUBLISH'" in SPUBLISH_LUA
    assert SPUBLISH_SHA.encode() in call.packed("ch", b"{}", "e", "-", "u", False)


def test_every_key_the_desk_scripts_touch_is_in_one_slot_on_a_cluster() -> None:
    keys = SessionKeys(store_prefix("sse:", clustered=True))
    desk = slot("{desk}")
    together = [
        keys.queue,
        keys.held,
        keys.load,
        keys.waits,
        keys.agents,
        keys.record,
        keys.session("s1"),
        keys.transcript("s1"),
        keys.notes("s1"),
        keys.agent("alice"),
        keys.agent_streams("alice"),
        record_key("sse:", clustered=True),
    ]
    assert {slot(k) for k in together} == {desk}
    # One server keeps its layout.
    assert store_prefix("sse:") == "sse:store:"
    assert record_key("sse:") == "sse:store:record"


def test_other_features_get_a_slot_of_their_own_on_a_cluster() -> None:
    clustered = make_settings(REDIS_URL="redis+cluster://127.0.0.1:7000")
    single = make_settings(REDIS_URL="redis://127.0.0.1:6379/0")
    assert single.area_prefix("webhooks") == "sse:webhooks:"
    prefix = clustered.area_prefix("webhooks")
    assert slot(prefix + "queue") == slot(prefix + "hook:h1") == slot("{webhooks}")


def test_cluster_slots_become_one_shard_per_primary() -> None:
    reply = [
        [0, 99, [b"127.0.0.1", 7000, b"id0", {}], [b"127.0.0.1", 7003, b"id3", {}]],
        [100, 16383, [b"127.0.0.1", 7001, b"id1", {}]],
        [50, 60, [b"127.0.0.1", 7000, b"id0", {}], [b"127.0.0.1", 7003, b"id3", {}]],
    ]
    shards = parse_slots(reply)
    assert [s.primary for s in shards] == ["127.0.0.1:7000", "127.0.0.1:7001"]
    assert shards[0].replicas == ("127.0.0.1:7003",)
    assert shards[0].ranges == ((0, 99), (50, 60))
    assert shards[1].replicas == ()
    assert shards[1].slots == 16284
