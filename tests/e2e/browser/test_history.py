"""The workbench's History and Reports pages in a real headless Chromium: a conversation
found by a Chinese word and read whole, also after Redis forgot it (FLUSHALL); the report
with its chart. Screenshots in ``test-output/browser/<test name>/``."""

from __future__ import annotations

import re

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect

from tests.e2e.browser.harness import (
    Stack,
    agent_says,
    customer_says,
    open_pages,
    sign_in_agent,
    start_chat,
    take_over,
)
from tests.support.processes import wait_until
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_history_finds_a_conversation_after_redis_forgot_it(
    stack: Stack, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        sign_in_agent(agent, stack.workbench.url)
        session = start_chat(customer, stack.chatbot.url)
        customer_says(customer, "我的快递丢了, my parcel is lost")
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
        expect(agent.locator(f'#queue li[data-session="{session}"]')).to_be_visible()
        take_over(agent, session)
        agent_says(agent, "我来帮您查一下 (let me check)")
        shots.take("conversation")
        wait_until_recorded(customer, stack, session, ["我的快递丢了", "我来帮您查一下"])

        agent.get_by_role("link", name="History").click()
        expect(agent).to_have_title("History · Agent workbench")
        result = agent.locator(f'.record-result[data-session="{session}"]')
        search = agent.get_by_role("searchbox", name="Search messages")
        search.fill("快递")
        agent.get_by_role("button", name="Search").click()
        expect(result).to_be_visible()
        expect(result.locator(".record-snippet")).to_contain_text("快递")
        result.click()
        transcript = agent.locator("#transcript")
        expect(transcript.locator(".msg-customer")).to_contain_text("我的快递丢了")
        expect(transcript.locator(".msg-agent")).to_contain_text("我来帮您查一下")
        shots.take("history-search")

        client = redis.Redis.from_url(redis_server.url)
        try:
            client.flushall()  # Redis forgets every session
        finally:
            client.close()
        agent.reload()
        search.fill("parcel lost")
        agent.get_by_role("button", name="Search").click()
        expect(result).to_be_visible()
        result.click()
        expect(transcript.locator(".msg-customer")).to_contain_text("my parcel is lost")
        expect(agent.locator("#transcript-title")).to_have_text(session)
        # nothing found: said so
        search.fill("无此内容 nothing like this")
        agent.get_by_role("button", name="Search").click()
        expect(agent.locator("#results-empty")).to_be_visible()
        shots.take("history-after-flushall")

        agent.get_by_role("link", name="Reports").click()
        expect(agent).to_have_title("Reports · Agent workbench")
        figures = agent.locator("#figures")
        expect(figures).to_contain_text("Conversations")
        expect(figures.locator(".figure").first).to_contain_text(re.compile(r"[1-9]"))
        expect(agent.locator("#chart rect.bar-conversations").first).to_be_attached()
        expect(agent.locator("#agents tr").first).to_contain_text("alice")
        shots.take("reports")


def test_a_returning_customer_sees_the_earlier_chat_after_redis_forgot_it(
    stack: Stack, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, shots = pages.customer, pages.shots
        session = start_chat(customer, stack.chatbot.url)
        customer_says(customer, "请问营业时间 opening hours?")
        expect(customer.locator('#log li[data-sender="bot"]')).to_have_count(1)
        wait_until_recorded(customer, stack, session, ["营业时间"], count=2)  # and the bot's
        client = redis.Redis.from_url(redis_server.url)
        try:
            client.flushall()
        finally:
            client.close()
        customer.reload()  # the customer comes back with the same token
        expect(customer.locator("#status-text")).to_have_text(
            "This chat has ended. Here is your earlier conversation."
        )
        log = customer.locator("#log")
        expect(log.locator('li[data-sender="customer"]')).to_contain_text("营业时间")
        expect(log.locator('li[data-sender="bot"]')).to_have_count(1)
        expect(customer.locator("#composer")).to_be_hidden()
        shots.take("earlier-chat")
        customer.get_by_role("button", name="New chat").click()  # starts a new chat
        expect(customer.locator("#composer")).to_be_visible()
        expect(customer.locator("#connection")).to_have_text("Live")
        expect(customer.locator("#log li")).to_have_count(0)


def wait_until_recorded(
    customer: Page, stack: Stack, session: str, texts: list[str], count: int | None = None
) -> None:
    """Until the record (the archiver copies a moment after Redis) holds a message with each
    of ``texts`` (and, given ``count``, that many messages), asked as the customer would."""
    token = customer.evaluate("JSON.parse(sessionStorage.getItem('cs-chat-session')).token")
    recorded = f"{stack.chatbot.url}/api/conversations/{session}"
    headers = {"Authorization": f"Bearer {token}"}

    def archived() -> bool:
        answer = httpx.get(recorded, headers=headers)
        if answer.status_code != 200:
            return False
        contents = [m["content"] for m in answer.json()["messages"]]
        if count is not None and len(contents) != count:
            return False
        return all(any(text in content for content in contents) for text in texts)

    wait_until(archived, timeout=30, description=f"{texts} in the record")
