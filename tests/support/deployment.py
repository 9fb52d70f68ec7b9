"""Redis and both services as real processes: for the e2e tests, the soak and the benchmark."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from tests.support.processes import ServiceProcess
from tests.support.redis_server import RedisServer

CHATBOT_APP = "products.ai_chatbot.main:app"
WORKBENCH_APP = "products.agent_workbench.main:app"


@dataclass
class Deployment:
    redis: RedisServer
    chatbots: list[ServiceProcess]
    workbenches: list[ServiceProcess]
    settings: Settings
    #: What the services were started with beyond the caller's ``env`` (DATABASE_URL, ...).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def chatbot(self) -> str:
        return self.chatbots[0].url

    @property
    def workbench(self) -> str:
        return self.workbenches[0].url

    def token(self, role: Role, subject: str) -> str:
        return issue_token(self.settings, role, subject)

    def agent_headers(self, agent_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(Role.AGENT, agent_id)}"}

    def service_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(Role.SERVICE, 'tests')}"}


def start_deployment(
    replicas: int = 1, redis: RedisServer | None = None, env: Mapping[str, str] | None = None
) -> Deployment:
    """Redis (a new one, or the caller's: say, with AOF on) and both services; ``env`` is
    added to the services' environment."""
    redis = redis or RedisServer()
    redis.start()
    secret = secrets.token_urlsafe(48)
    # The record (issue 21): one SQLite file both services share, removed with the deployment.
    record_dir = Path(tempfile.mkdtemp(prefix="record-"))
    base_env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{record_dir / 'record.sqlite3'}",
        # Attachments (issue 23): one folder both services share, removed with the record's.
        "ATTACHMENTS_DIR": str(record_dir / "attachments"),
        "REDIS_URL": redis.url,
        "AUTH_SECRET": secret,
        "SSE_HEARTBEAT_SECONDS": "1",
        "RATE_LIMIT_PER_MINUTE": "6000",
        "RATE_LIMIT_BURST": "1000",
        # Agents pick chats by hand unless a test is about automatic assignment (an agent's
        # open stream would otherwise take the chats other tests put in the queue).
        "ASSIGNMENT_MODE": "manual",
        **(env or {}),
    }
    settings = Settings(_env_file=None, REDIS_URL=redis.url, AUTH_SECRET=secret)
    started: list[ServiceProcess] = []
    try:
        chatbots = [ServiceProcess(CHATBOT_APP, env=base_env).start() for _ in range(replicas)]
        started += chatbots
        workbenches = [ServiceProcess(WORKBENCH_APP, env=base_env).start() for _ in range(replicas)]
        started += workbenches
    except BaseException:
        for process in started:
            process.stop()
        redis.stop()
        raise
    return Deployment(redis, chatbots, workbenches, settings, base_env)


def stop_deployment(deployment: Deployment) -> None:
    for process in [*deployment.chatbots, *deployment.workbenches]:
        process.stop()
    deployment.redis.stop()
    url = deployment.env.get("DATABASE_URL", "")
    folder = Path(url.removeprefix("sqlite+aiosqlite:///")).parent
    if folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith("record-"):
        shutil.rmtree(folder, ignore_errors=True)  # the one start_deployment made


async def new_chat(
    http: httpx.AsyncClient, d: Deployment, agent: str | None, display_name: str | None = None
) -> tuple[str, dict[str, str]]:
    """A new chat (its name and the customer's headers); with ``agent``, escalated and taken
    over by that agent."""
    body = {"display_name": display_name} if display_name else {}
    created = (await http.post(f"{d.chatbot}/api/sessions", json=body)).json()
    name, customer = created["session_name"], {"Authorization": f"Bearer {created['token']}"}
    if agent:
        await http.post(
            f"{d.chatbot}/api/manual/escalate", json={"session_name": name}, headers=customer
        )
        taken = await http.post(
            f"{d.workbench}/api/sessions/{name}/takeover",
            json={"agent_id": agent},
            headers=d.agent_headers(agent),
        )
        assert taken.status_code == 200, taken.text
    return name, customer
