"""REDIS_URL's forms, and the clear error a bad one is at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.config import Settings
from infrastructure.redis_url import RedisUrlError, parse_redis_url


def test_one_server_urls_are_as_before() -> None:
    single = parse_redis_url("redis://:s3cret@cache.local:6380/2")
    assert (single.kind, single.hosts, single.db, single.password) == (
        "single",
        (("cache.local", 6380),),
        2,
        "s3cret",
    )
    assert "s3cret" not in single.display
    assert parse_redis_url("rediss://h").hosts == (("h", 6379),)
    assert parse_redis_url("unix:///run/redis.sock?db=3").db == 3


def test_sentinel_url_names_sentinels_master_and_db() -> None:
    topology = parse_redis_url("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2,[::1]:5000/mymaster/4")
    assert topology.kind == "sentinel"
    assert topology.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 5000))
    assert (topology.master, topology.db, topology.password) == ("mymaster", 4, "pw")
    assert parse_redis_url("redis+sentinel://s:1/m").db == 0
    assert parse_redis_url("redis+sentinel://s:1/m?sentinel_password=x").sentinel_password == "x"
    assert "pw" not in topology.display


def test_cluster_url_names_seed_nodes() -> None:
    topology = parse_redis_url("redis+cluster://a:7000,b:7001")
    assert (topology.kind, topology.hosts) == ("cluster", (("a", 7000), ("b", 7001)))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel:///mymaster", "names no hosts"),
        ("redis+cluster://", "names no hosts"),
        ("memcached://h:1", "unknown scheme"),
        ("h:6379", "no scheme"),
        ("redis+sentinel://a:26379", "names no master"),
        ("redis+sentinel://a:26379/", "names no master"),
        ("redis+sentinel://a:port/m", "bad port"),
        ("redis+sentinel://a:70000/m", "bad port"),
        ("redis+sentinel://a:1/m/x", "bad database"),
        ("redis+sentinel://a:1/m/0/extra", "path too long"),
        ("redis://h:notaport/0", "bad port"),
        ("redis:///0", "names no host"),
        ("redis+cluster://a:1/0", "takes no path"),
    ],
)
def test_a_bad_url_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError, match=problem):
        parse_redis_url(url)


def test_settings_refuse_a_bad_url_at_start_naming_redis_url() -> None:
    with pytest.raises(ValidationError, match="REDIS_URL redis\\+sentinel:// names no master"):
        Settings(_env_file=None, REDIS_URL="redis+sentinel://a:1")


def test_a_cluster_url_is_accepted_and_lays_keys_out_by_hash_tag() -> None:
    settings = Settings(_env_file=None, REDIS_URL="redis+cluster://a:7000,b:7001")
    assert settings.redis_clustered
    assert settings.redis_topology.hosts == (("a", 7000), ("b", 7001))


def test_a_cluster_url_with_no_hosts_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="redis\\+cluster:// names no hosts"):
        Settings(_env_file=None, REDIS_URL="redis+cluster://")


def test_a_cluster_prefix_with_a_brace_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="every key in one slot"):
        Settings(
            _env_file=None, REDIS_URL="redis+cluster://a:7000", REDIS_SSE_CHANNEL_PREFIX="{x}:"
        )
