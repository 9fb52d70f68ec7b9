"""Webhooks end to end: both services as processes, a real HTTP receiver in the test that
is down for a while (and the workbench restarted meanwhile), then back: it gets every
delivery exactly once, in order per session, with signatures that verify."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.deployment import Deployment, start_deployment, stop_deployment
from tests.support.processes import wait_until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret-0123456789"
EXPECTED = ["message", "message", "message", "escalated", "assigned", "message", "closed", "rated"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.down()


@pytest.fixture(scope="module")
def deployment(receiver: WebhookReceiver) -> Iterator[Deployment]:
    hooks = [{"url": receiver.url, "secret": SECRET, "events": sorted(set(EXPECTED)), "id": "crm"}]
    deployed = start_deployment(
        env={
            "WEBHOOKS": json.dumps(hooks),
            "WEBHOOK_TIMEOUT_SECONDS": "0.5",
            "WEBHOOK_BACKOFF_MIN_SECONDS": "0.1",
            "WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
            "WEBHOOK_CLAIM_IDLE_SECONDS": "2",
        }
    )
    yield deployed
    stop_deployment(deployed)


def journey(http: httpx.Client, d: Deployment, agent: str) -> str:
    """hello (and the bot's answer), 转人工, takeover, a reply, close, a rating."""
    created = http.post(f"{d.chatbot}/api/sessions").json()
    name, customer = created["session_name"], {"Authorization": f"Bearer {created['token']}"}
    for text in ("hello", "转人工"):
        sent = http.post(
            f"{d.chatbot}/api/sessions/{name}/messages", json={"content": text}, headers=customer
        )
        assert sent.status_code == 201, sent.text
    staff = d.agent_headers(agent)
    base = f"{d.workbench}/api/sessions/{name}"
    assert http.post(f"{base}/takeover", json={"agent_id": agent}, headers=staff).is_success
    said = http.post(
        f"{base}/messages",
        json={"agent_id": agent, "content": "Hi, how can I help?"},
        headers=staff,
    )
    assert said.is_success, said.text
    assert http.post(f"{base}/close", json={"agent_id": agent}, headers=staff).is_success
    rated = http.post(
        f"{d.chatbot}/api/sessions/{name}/rating", json={"score": 5}, headers=customer
    )
    assert rated.status_code == 201, rated.text
    return str(name)


def test_a_receiver_down_for_a_while_gets_everything_once_in_order(
    deployment: Deployment, receiver: WebhookReceiver
) -> None:
    d = deployment
    staff = d.agent_headers("dana")
    with httpx.Client(timeout=10) as http:
        # The receiver is down: nothing listens on its port.
        names = [journey(http, d, "dana"), journey(http, d, "erin")]

        def failing() -> bool:
            status = http.get(f"{d.workbench}/api/webhooks/status", headers=staff).json()
            (crm,) = status["hooks"]
            return crm["consecutive_failures"] >= 2 and not crm["healthy"]

        wait_until(failing, timeout=15, description="the workbench failing to deliver")
        backlog = http.get(f"{d.workbench}/api/webhooks/status", headers=staff).json()["backlog"]
        assert backlog == 2 * len(EXPECTED)

        # The workbench restarts while the receiver is still down: the new process is a new
        # consumer and takes over what the old one held once it has been idle long enough.
        (old,) = d.workbenches
        old.stop()
        old.start()
        receiver.up()
        wait_until(
            lambda: len(receiver.snapshot()) >= 2 * len(EXPECTED),
            timeout=30,
            description=f"{2 * len(EXPECTED)} deliveries",
        )

        def drained() -> bool:
            status = http.get(f"{d.workbench}/api/webhooks/status", headers=staff).json()
            return bool(status["backlog"] == 0 and status["hooks"][0]["healthy"])

        wait_until(drained, timeout=10, description="an empty backlog and a healthy hook")

        # The gauge is what the worker saw on its latest round (a round a second at most).
        def metrics_drained() -> str | None:
            text = http.get(f"{d.workbench}/metrics").text
            return text if "webhook_backlog 0.0" in text else None

        metrics = str(
            wait_until(metrics_drained, timeout=10, description="webhook_backlog 0 in /metrics")
        )
        assert 'webhook_deliveries_total{hook="crm",outcome="delivered"}' in metrics

    got = receiver.snapshot()
    assert len(got) == 2 * len(EXPECTED)
    ids = [r.json["id"] for r in got]
    assert len(set(ids)) == len(ids), "a delivery came twice"
    for r in got:
        r.verify(SECRET)  # raises unless the signature verifies, within 5 minutes
    for name in names:
        mine = [r.json for r in got if r.json["session_name"] == name]
        assert [e["type"] for e in mine] == EXPECTED, name
        senders = [e["data"].get("sender") for e in mine if e["type"] == "message"]
        assert senders == ["customer", "bot", "customer", "agent"]
        assert mine[-1]["data"]["score"] == 5
