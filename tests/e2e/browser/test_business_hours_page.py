"""Out of hours in a real Chromium: 转人工 answers with the next opening time and the
customer leaves a message with the page's form; agents find it waiting."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browser.harness import (
    AGENT_ID,
    AGENT_PASSWORD,
    Stack,
    open_pages,
    start_chat,
    start_stack,
)
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def closed_now() -> tuple[dict[str, object], datetime]:
    """Hours that are closed now, whatever the day: open only three days from today."""
    opening_day = (datetime.now(UTC) + timedelta(days=3)).date()
    hours: dict[str, object] = {
        "timezone": "UTC",
        "weekly": {DAYS[opening_day.weekday()]: [["09:00", "18:00"]]},
    }
    return hours, datetime(opening_day.year, opening_day.month, opening_day.day, 9, tzinfo=UTC)


@pytest.fixture
def closed_stack(redis_server: RedisServer) -> Iterator[tuple[Stack, datetime]]:
    hours, opens = closed_now()
    with start_stack(redis_server, {"BUSINESS_HOURS": json.dumps(hours)}) as deployed:
        yield deployed, opens


def test_out_of_hours_the_customer_leaves_a_message(
    closed_stack: tuple[Stack, datetime], request: pytest.FixtureRequest
) -> None:
    stack, opens = closed_stack
    with open_pages(request.node.name) as pages:
        customer, shots = pages.customer, pages.shots
        session = start_chat(customer, stack.chatbot.url)
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()

        # No queue: the bot says when we open, and the form asks for a message.
        bot = customer.locator('#log li[data-sender="bot"]')
        expect(bot).to_have_count(1)
        expect(bot).to_contain_text("our agents are away right now")
        expect(bot).to_contain_text(f"{opens:%d %b %Y}, 09:00 (UTC)")
        form = customer.locator("#leave-message")
        expect(form).to_be_visible()
        expect(customer.locator("#leave-opening")).to_contain_text("We open again on")
        expect(customer.locator("#status-text")).to_have_text(re.compile("Chatting with the bot"))
        shots.take("out-of-hours")

        # An empty form is not sent (the fields are required): nothing in the transcript.
        customer.get_by_role("button", name=re.compile("Leave a message")).click()
        expect(customer.locator("#leave-thanks")).to_be_hidden()
        expect(customer.locator('#log li[data-sender="customer"]')).to_have_count(0)
        customer.get_by_label("Name · 姓名").fill("Mei")
        customer.get_by_label("Email or phone").fill("mei@example.com")
        customer.get_by_label("Message · 留言").fill("My parcel A-17 never came.")
        customer.get_by_role("button", name=re.compile("Leave a message")).click()
        expect(customer.locator("#leave-thanks")).to_be_visible()
        left = customer.locator('#log li[data-sender="customer"]')
        expect(left).to_contain_text("My parcel A-17 never came.")
        expect(left).to_contain_text("mei@example.com")
        shots.take("message-left")

    # The agents' side: the message waits for them, with who to contact.
    with httpx.Client(base_url=stack.workbench.url, timeout=10) as http:
        token = http.post(
            "/api/agents/login", json={"agent_id": AGENT_ID, "password": AGENT_PASSWORD}
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        (waiting,) = http.get("/api/left-messages", headers=auth).json()
        assert (waiting["session_name"], waiting["name"], waiting["contact"]) == (
            session,
            "Mei",
            "mei@example.com",
        )
        transcript = http.get(f"/api/sessions/{session}/messages", headers=auth).json()
        assert "My parcel A-17 never came." in transcript[-1]["content"]
        assert http.post(f"/api/left-messages/{session}/done", headers=auth).status_code == 200
        assert http.get("/api/left-messages", headers=auth).json() == []
        assert http.post(f"/api/left-messages/{session}/done", headers=auth).status_code == 404
