"""Messages left out of hours on the workbench, in a real Chromium: the panel lists them
(name, contact, text, when), a live notice when one is left and when hours begin, "Done"
takes one off every agent's list. Screenshots at desktop width and at 390 px."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis.asyncio as aioredis
from playwright.sync_api import expect

from infrastructure.config import Settings
from infrastructure.hours.inbox import LeftMessage, RedisLeftMessages
from tests.e2e.browser.harness import Stack, open_pages, sign_in_agent, start_chat, start_stack
from tests.e2e.browser.test_business_hours_page import closed_now
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ALWAYS_OPEN = {
    "timezone": "UTC",
    "weekly": {
        day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
}


@pytest.fixture
def closed_stack(redis_server: RedisServer) -> Iterator[Stack]:
    hours, _ = closed_now()
    with start_stack(redis_server, {"BUSINESS_HOURS": json.dumps(hours)}) as deployed:
        yield deployed


@pytest.fixture
def open_stack(redis_server: RedisServer) -> Iterator[Stack]:
    env = {"BUSINESS_HOURS": json.dumps(ALWAYS_OPEN), "DESK_TICK_SECONDS": "1"}
    with start_stack(redis_server, env) as deployed:
        yield deployed


def test_a_message_left_shows_live_and_done_takes_it_off(
    closed_stack: Stack, request: pytest.FixtureRequest
) -> None:
    stack = closed_stack
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        sign_in_agent(agent, stack.workbench.url)
        expect(agent.locator("#left-empty")).to_be_visible()
        start_chat(customer, stack.chatbot.url)
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
        expect(customer.locator("#leave-message")).to_be_visible()
        customer.get_by_label("Name · 姓名").fill("Mei")
        customer.get_by_label("Email or phone").fill("mei@example.com")
        customer.get_by_label("Message · 留言").fill("My parcel A-17 never came.")
        customer.get_by_role("button", name=re.compile("Leave a message")).click()
        expect(customer.locator("#leave-thanks")).to_be_visible()

        # Live, without a reload: the entry and a notice.
        item = agent.locator("#left li.left-item")
        expect(item).to_have_count(1)
        expect(item.locator("strong")).to_have_text("Mei")
        expect(item.locator(".left-contact")).to_have_text("mei@example.com")
        expect(item.locator(".left-text")).to_have_text("My parcel A-17 never came.")
        expect(item.locator("time")).to_have_text(re.compile(r"\d{1,2}:\d{2}"))
        expect(agent.locator("#left-count")).to_have_text("1")
        expect(agent.locator("#left-notice")).to_have_text("Mei left a message")
        shots.take("left-live")
        agent.set_viewport_size({"width": 390, "height": 844})
        agent.screenshot(path=shots.folder / "left-phone-agent.png", full_page=True)
        agent.set_viewport_size({"width": 1180, "height": 760})

        # A second tab of the team sees it too, and hears when it is done.
        other = agent.context.new_page()
        sign_in_agent(other, stack.workbench.url)
        expect(other.locator("#left li.left-item")).to_have_count(1)
        agent.get_by_role("button", name="Mark the message from Mei as done").click()
        expect(agent.locator("#left li.left-item")).to_have_count(0)
        expect(agent.locator("#left-empty")).to_be_visible()
        expect(other.locator("#left li.left-item")).to_have_count(0)
        shots.take("done")


def _leave(redis_url: str, session_name: str, name: str, text: str) -> None:
    """A message left while closed, put in the inbox by the inbox's own code."""

    async def leave() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            inbox = RedisLeftMessages(client, Settings(_env_file=None, REDIS_URL=redis_url))
            left = LeftMessage(
                session_name, name, "+86 138 0000 0000", text, int(time.time() * 1000)
            )
            await inbox.add(left)
        finally:
            await client.aclose()

    # (Playwright's sync API runs an event loop in this thread: the inbox's in another.)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, leave()).result()


def test_when_hours_begin_the_agents_hear_of_the_messages_waiting(
    open_stack: Stack, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    stack = open_stack
    with open_pages(request.node.name) as pages:
        agent, shots = pages.agent, pages.shots
        sign_in_agent(agent, stack.workbench.url)
        _leave(redis_server.url, "night-1", "Wang", "Please call me about my refund.")
        # The workbench's tick sees an open window with a message waiting: one notice.
        expect(agent.locator("#left-notice")).to_have_text(
            "Hours have begun: 1 message left while we were closed"
        )
        item = agent.locator('#left li[data-session="night-1"]')
        expect(item.locator("strong")).to_have_text("Wang")
        expect(item.locator(".left-text")).to_have_text("Please call me about my refund.")
        shots.take("hours-begin")
