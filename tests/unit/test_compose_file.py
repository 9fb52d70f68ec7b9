"""docker-compose.yml is valid and wires Redis and both services (checked statically: the
development machines have no Docker engine, only the docker-compose client)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
INSTALL_HINT = "docker-compose is not installed: `apt-get install docker-compose` (make test does)"


def compose(
    args: list[str], env_file: Path, auth_secret: str | None
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(INSTALL_HINT)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(env_file.parent)}
    if auth_secret is not None:
        env["AUTH_SECRET"] = auth_secret
    # --env-file: never read a developer's .env (it may hold an AUTH_SECRET).
    return subprocess.run(
        [binary, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    path = tmp_path / "compose.env"
    path.write_text("")
    return path


@pytest.fixture
def config(empty_env_file: Path) -> dict[str, Any]:
    result = compose(["config"], empty_env_file, auth_secret="s3cret-for-the-test")
    assert result.returncode == 0, result.stderr
    parsed = yaml.safe_load(result.stdout)
    assert isinstance(parsed, dict)
    return parsed


def test_compose_file_is_valid(empty_env_file: Path) -> None:
    result = compose(["config", "-q"], empty_env_file, auth_secret="s3cret-for-the-test")
    assert result.returncode == 0, result.stderr


def test_auth_secret_is_required(empty_env_file: Path) -> None:
    result = compose(["config", "-q"], empty_env_file, auth_secret=None)
    assert result.returncode != 0
    assert "AUTH_SECRET" in result.stderr


def test_four_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"redis", "postgres", "ai_chatbot", "agent_workbench"}


def test_postgres_keeps_the_record_and_both_services_use_it(config: dict[str, Any]) -> None:
    postgres = config["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any("/var/lib/postgresql/data" in str(v) for v in postgres["volumes"])
    assert "postgres-data" in config["volumes"]
    assert not postgres.get("ports"), "the database is not published on the host"
    for name in ("ai_chatbot", "agent_workbench"):
        service = config["services"][name]
        url = service["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://cs:")
        assert url.endswith("@postgres:5432/cs_record")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def _published(service: dict[str, Any]) -> set[tuple[int, int]]:
    ports: set[tuple[int, int]] = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add((int(port["published"]), int(port["target"])))
        else:  # short syntax "HOST:CONTAINER"
            host, _, container = str(port).rpartition(":")
            ports.add((int(host), int(container)))
    return ports


@pytest.mark.parametrize(
    ("name", "port", "app"),
    [
        ("ai_chatbot", 8000, "products.ai_chatbot.main:app"),
        ("agent_workbench", 8002, "products.agent_workbench.main:app"),
    ],
)
def test_service_wiring(config: dict[str, Any], name: str, port: int, app: str) -> None:
    service = config["services"][name]
    assert _published(service) == {(port, port)}
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert service["environment"]["AUTH_SECRET"] == "s3cret-for-the-test"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service["restart"] in ("unless-stopped", "always")
    command = service["command"]
    assert app in command
    assert command[command.index("--port") + 1] == str(port)
    assert service["build"]["dockerfile"] == "Dockerfile"
    healthcheck = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in healthcheck


def test_both_services_share_one_image(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["ai_chatbot"]["build"] == services["agent_workbench"]["build"]


def test_redis_has_a_healthcheck(config: dict[str, Any]) -> None:
    redis = config["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_dockerfile_runs_as_non_root_without_dev_dependencies() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    user_lines = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines, "the image must switch to a non-root USER"
    assert user_lines[-1] not in ("root", "0")
    install_lines = [line for line in text.splitlines() if "pip install" in line]
    assert install_lines
    assert not any("[dev" in line or "-e " in line for line in install_lines)
