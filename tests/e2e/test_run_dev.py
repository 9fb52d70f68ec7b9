"""scripts/run_dev.py: starts Redis when none answers, both services, and stops all it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.support.processes import (
    REPO_ROOT,
    child_pids,
    free_port,
    pid_alive,
    port_is_free,
    tail,
    wait_until,
)
from tests.support.redis_server import RedisServer, ping

pytestmark = pytest.mark.e2e

RUN_DEV = REPO_ROOT / "scripts" / "run_dev.py"
STUB_APP = "tests.support.stub_app:app"


@dataclass
class RunDev:
    proc: subprocess.Popen[bytes]
    chatbot_port: int
    workbench_port: int
    redis_url: str
    env_file: Path
    log_path: Path

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in (self.chatbot_port, self.workbench_port)]

    def output(self) -> str:
        return tail(self.log_path, max_chars=20_000)

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"run_dev exited with {self.proc.returncode}:\n{self.output()}"
                )
            return "Ctrl-C stops everything" in self.output()

        try:
            wait_until(ready, timeout=timeout, description="run_dev to report ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- run_dev output ---\n{self.output()}") from None
        for url in self.urls:
            assert httpx.get(url + "/healthz", timeout=2.0).status_code == 200

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def run_dev(tmp_path: Path) -> Iterator[list[RunDev]]:
    started: list[RunDev] = []
    yield started
    for runner in started:  # a failed test must not leave anything running
        if runner.proc.poll() is None:
            runner.proc.kill()
            runner.proc.wait(timeout=30)


def launch(
    tmp_path: Path,
    started: list[RunDev],
    redis_url: str | None = None,
    stub_apps: bool = False,
) -> RunDev:
    redis_url = redis_url or f"redis://127.0.0.1:{free_port()}/0"
    chatbot_port, workbench_port = free_port(), free_port()
    env_file = tmp_path / "dot-env"
    log_path = tmp_path / "run_dev.log"
    cmd = [
        sys.executable,
        str(RUN_DEV),
        "--chatbot-port",
        str(chatbot_port),
        "--workbench-port",
        str(workbench_port),
        "--env-file",
        str(env_file),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    if stub_apps:
        cmd += ["--chatbot-app", STUB_APP, "--workbench-app", STUB_APP]
    env = {**os.environ, "REDIS_URL": redis_url}
    env.pop("AUTH_SECRET", None)
    env.pop("AGENTS", None)  # a first run: no agent account configured anywhere
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    runner = RunDev(proc, chatbot_port, workbench_port, redis_url, env_file, log_path)
    started.append(runner)
    return runner


def assert_everything_gone(runner: RunDev, children: list[int], redis_port: int | None) -> None:
    for pid in children:
        assert not pid_alive(pid), f"child {pid} still runs after run_dev stopped"
    ports = [runner.chatbot_port, runner.workbench_port]
    if redis_port is not None:
        ports.append(redis_port)
    for port in ports:
        wait_until(partial(port_is_free, port), timeout=5, description=f"port {port} free")


def _redis_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


SIGN_IN = re.compile(
    r"customer page: (?P<customer>\S+) — agent page: (?P<agent>\S+), "
    r"sign in as (?P<agent_id>\S+) / (?P<password>\S+)"
)


def printed_sign_in(runner: RunDev) -> re.Match[str]:
    found = SIGN_IN.findall(runner.output())
    assert len(found) == 1, f"one sign-in line expected:\n{runner.output()}"
    match = SIGN_IN.search(runner.output())
    assert match is not None
    assert match["customer"] == runner.urls[0]
    assert match["agent"] == runner.urls[1]
    return match


def _check_starts_its_own_redis_and_stops_all(runner: RunDev, real: bool = False) -> None:
    runner.wait_ready()
    sign_in = printed_sign_in(runner)
    if real:  # the printed account really signs in on the workbench, a wrong password not
        login = f"{runner.urls[1]}/api/agents/login"
        body = {"agent_id": sign_in["agent_id"], "password": sign_in["password"]}
        answer = httpx.post(login, json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token"]
        wrong = httpx.post(login, json={**body, "password": "not-it"}, timeout=10)
        assert wrong.status_code == 401
    assert ping(runner.redis_url), "run_dev must have started a redis-server at REDIS_URL"
    children = child_pids(runner.proc.pid)
    assert len(children) == 3, f"expected redis-server and two services, got {children}"
    secret_lines = [
        line for line in runner.env_file.read_text().splitlines() if line.startswith("AUTH_SECRET=")
    ]
    assert len(secret_lines) == 1
    assert len(secret_lines[0].removeprefix("AUTH_SECRET=").strip("'")) >= 48
    # The password is not in .env (only its hash) but kept beside the Redis data, privately.
    assert sign_in["password"] not in runner.env_file.read_text()
    kept = runner.env_file.parent / "run" / "first-agent.json"
    assert sign_in["password"] in kept.read_text()
    assert kept.stat().st_mode & 0o077 == 0

    assert runner.stop(signal.SIGINT) == 0, runner.output()

    assert_everything_gone(runner, children, _redis_port(runner.redis_url))
    assert not ping(runner.redis_url)


def test_run_dev_starts_redis_and_the_real_services_then_stops_everything(
    tmp_path: Path, run_dev: list[RunDev]
) -> None:
    for module in ("ai_chatbot", "agent_workbench"):
        assert (REPO_ROOT / "products" / module / "main.py").is_file(), f"products/{module}/main.py"
    _check_starts_its_own_redis_and_stops_all(launch(tmp_path, run_dev), real=True)


def test_run_dev_supervisor_with_stub_apps(tmp_path: Path, run_dev: list[RunDev]) -> None:
    _check_starts_its_own_redis_and_stops_all(launch(tmp_path, run_dev, stub_apps=True))


def test_run_dev_keeps_an_existing_secret_and_redis(
    tmp_path: Path, run_dev: list[RunDev], redis_server: RedisServer
) -> None:
    (tmp_path / "dot-env").write_text("AUTH_SECRET=kept-as-it-is\n")
    runner = launch(tmp_path, run_dev, redis_url=redis_server.url, stub_apps=True)
    runner.wait_ready()
    children = child_pids(runner.proc.pid)
    assert len(children) == 2, f"a Redis answered: only the two services, got {children}"

    assert runner.stop(signal.SIGTERM) == 0, runner.output()

    assert_everything_gone(runner, children, None)
    assert redis_server.ping(), "run_dev must not stop a Redis it did not start"
    lines = runner.env_file.read_text().splitlines()
    assert lines[0] == "AUTH_SECRET=kept-as-it-is"
    assert [line.split("=")[0] for line in lines] == ["AUTH_SECRET", "AGENTS"]
    first = printed_sign_in(runner)

    # A later run creates nothing and prints the same account and password again.
    before = runner.env_file.read_text()
    again = launch(tmp_path, run_dev, redis_url=redis_server.url, stub_apps=True)
    again.wait_ready()
    assert again.stop(signal.SIGTERM) == 0, again.output()
    assert printed_sign_in(again).groups()[2:] == first.groups()[2:]
    assert "created an agent account" not in again.output()
    assert runner.env_file.read_text() == before


def test_run_dev_exits_non_zero_when_a_child_dies(tmp_path: Path, run_dev: list[RunDev]) -> None:
    runner = launch(tmp_path, run_dev, stub_apps=True)
    runner.wait_ready()
    children = child_pids(runner.proc.pid)
    assert len(children) == 3
    service_pid = max(children)  # started last: agent_workbench

    os.kill(service_pid, signal.SIGKILL)

    assert runner.proc.wait(timeout=30) != 0
    assert "exited with code" in runner.output()
    assert_everything_gone(runner, children, _redis_port(runner.redis_url))


def test_a_killed_run_dev_leaves_nothing_behind(tmp_path: Path, run_dev: list[RunDev]) -> None:
    runner = launch(tmp_path, run_dev, stub_apps=True)
    runner.wait_ready()
    children = child_pids(runner.proc.pid)
    assert len(children) == 3

    runner.proc.kill()  # no chance to clean up: the children's parent-death signal must
    runner.proc.wait(timeout=10)

    for pid in children:
        wait_until(
            partial(lambda pid: not pid_alive(pid), pid),
            timeout=15,
            description=f"orphaned child {pid} to exit",
        )
    assert_everything_gone(runner, children, _redis_port(runner.redis_url))
