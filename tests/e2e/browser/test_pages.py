"""The two web pages in a real headless Chromium, against real services and Redis.

A customer on the chatbot page and an agent on the workbench page, each in its own browser
context (own cookies and sessionStorage), as two people on two machines would be.
Screenshots of both pages at each step go to ``test-output/browser/<test name>/``.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Request, Route, expect

from tests.e2e.browser.harness import (
    AGENT_ID,
    OTHER_AGENT_ID,
    OTHER_AGENT_PASSWORD,
    Stack,
    agent_says,
    customer_says,
    open_pages,
    sign_in_agent,
    start_chat,
    take_over,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_customer_and_agent_chat_through_a_handover(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots

        sign_in_agent(agent, stack.workbench.url)
        expect(agent.locator("#queue-empty")).to_be_visible()
        expect(agent).to_have_title("Agent workbench")

        # The bot answers first.
        session = start_chat(customer, stack.chatbot.url)
        customer_says(customer, "hello")
        bot = customer.locator('#log li[data-sender="bot"]')
        expect(bot).to_have_count(1)
        expect(bot).to_contain_text("virtual assistant")
        shots.take("bot-answers")

        # 转人工: the customer waits; the agent's queue gets it without a reload.
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
        expect(customer.locator("#status-text")).to_have_text(
            "Waiting for an agent · you are number 1 in the queue"
        )
        waited = customer.locator("#waited")
        expect(waited).to_have_text(re.compile(r"^waited 0:0\d$"))
        item = agent.locator(f'#queue li[data-session="{session}"]')
        expect(item).to_be_visible()
        expect(agent.locator("#badge")).to_have_text("1 new")
        expect(agent).to_have_title("(1) Agent workbench")
        # Both time-waited counters are live.
        seen = waited.inner_text()
        expect(waited).not_to_have_text(seen)
        queue_waited = item.locator(".q-waited")
        seen = queue_waited.inner_text()
        expect(queue_waited).not_to_have_text(seen)
        shots.take("waiting-for-agent")

        # Takeover: the customer hears of it; the agent sees the transcript so far.
        take_over(agent, session)
        expect(customer.locator("#status-text")).to_contain_text(f"Agent {AGENT_ID} joined")
        transcript = agent.locator("#transcript")
        expect(transcript.locator('li[data-sender="customer"]', has_text="hello")).to_have_count(1)
        expect(transcript.locator('li[data-sender="bot"]')).to_contain_text("virtual assistant")
        expect(agent.locator("#queue-empty")).to_be_visible()
        expect(agent.locator("#badge")).to_be_hidden()
        expect(agent).to_have_title("Agent workbench")
        shots.take("agent-took-over")

        # Messages both ways, live; the bot stays quiet.
        customer_says(customer, "Where is my parcel?")
        expect(
            transcript.locator('li[data-sender="customer"]', has_text="Where is my parcel?")
        ).to_have_count(1)
        agent_says(agent, "It left the warehouse this morning.")
        from_agent = customer.locator('#log li[data-sender="agent"]')
        expect(from_agent).to_have_count(1)
        expect(from_agent).to_contain_text("It left the warehouse this morning.")
        expect(from_agent.locator(".who")).to_have_text(f"Agent {AGENT_ID}")
        customer_says(customer, "Thank you!")
        expect(transcript.locator('li[data-sender="customer"]')).to_have_count(3)
        expect(bot).to_have_count(1)
        shots.take("chatting")

        # Release: back to the bot, which answers again.
        agent.get_by_role("button", name="Release to bot").click()
        expect(agent.locator("#conv-empty")).to_be_visible()
        expect(agent.locator("#mine-empty")).to_be_visible()
        expect(customer.locator("#status-text")).to_contain_text("Back to the bot")
        customer_says(customer, "What are your opening hours?")
        expect(bot).to_have_count(2)
        expect(bot.last).to_contain_text("Opening hours")
        # Every message exactly once, in order.
        expect(customer.locator("#log li.msg")).to_have_count(7)
        shots.take("back-to-the-bot")


def test_customer_page_survives_a_chatbot_restart(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots

        sign_in_agent(agent, stack.workbench.url)
        session = start_chat(customer, stack.chatbot.url)
        streams: list[Request] = []
        customer.on("request", lambda r: streams.append(r) if "/events" in r.url else None)
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
        take_over(agent, session)
        expect(customer.locator("#status-text")).to_contain_text(f"Agent {AGENT_ID} joined")
        customer_says(customer, "Before the restart")
        expect(agent.locator('#transcript li[data-sender="customer"]')).to_have_count(1)
        shots.take("before-restart")

        # The chatbot service goes away; the page notices.
        stack.chatbot.stop()
        connection = customer.locator("#connection")
        expect(connection).to_have_text("Reconnecting…")

        # The agent writes while the customer's service is down.
        away = "Written while your page was offline"
        agent_says(agent, away)
        shots.take("chatbot-down")

        # A new chatbot process on the same port: the page resumes and catches up, once.
        stack.restart_chatbot()
        expect(connection).to_have_text("Live", timeout=20_000)
        missed = customer.locator('#log li[data-sender="agent"]', has_text=away)
        expect(missed).to_have_count(1)
        # A full round trip later it is still there once (no late duplicate from a replay).
        customer_says(customer, "Got it, thanks")
        expect(
            agent.locator('#transcript li[data-sender="customer"]', has_text="Got it, thanks")
        ).to_have_count(1)
        expect(missed).to_have_count(1)
        expect(customer.locator("#log li.msg")).to_have_count(3)
        # The stream resumed from where it was (Last-Event-ID), not from scratch.
        resumed = [
            r for r in streams if r.header_value("last-event-id") or "last_event_id=" in r.url
        ]
        assert resumed, [r.url for r in streams]
        shots.take("after-restart")

        # A reload rebuilds the same conversation from the session kept in sessionStorage.
        customer.reload()
        expect(connection).to_have_text("Live")
        expect(customer.locator("#status-text")).to_contain_text(f"Agent {AGENT_ID} joined")
        expect(missed).to_have_count(1)
        expect(customer.locator("#log li.msg")).to_have_count(3)
        shots.take("after-reload")


def test_takeover_of_a_session_another_agent_took_shows_who(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots

        # This agent's stream is cut off, so its queue goes stale: exactly the moment a
        # takeover races another agent's.
        def refuse(route: Route) -> None:
            route.abort()

        agent.route(re.compile(r"/api/agents/[^/]+/events"), refuse)
        session = start_chat(customer, stack.chatbot.url)
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
        expect(customer.locator("#status-text")).to_contain_text("Waiting for an agent")
        sign_in_agent(agent, stack.workbench.url, wait_live=False)
        item = agent.locator(f'#queue li[data-session="{session}"]')
        expect(item).to_be_visible()
        expect(agent.locator("#connection")).to_have_text(re.compile("Reconnecting|Connecting"))

        with httpx.Client(base_url=stack.workbench.url, timeout=10) as http:
            login = http.post(
                "/api/agents/login",
                json={"agent_id": OTHER_AGENT_ID, "password": OTHER_AGENT_PASSWORD},
            )
            login.raise_for_status()
            taken = http.post(
                f"/api/sessions/{session}/takeover",
                json={"agent_id": OTHER_AGENT_ID},
                headers={"Authorization": f"Bearer {login.json()['token']}"},
            )
            taken.raise_for_status()
        expect(customer.locator("#status-text")).to_contain_text(f"Agent {OTHER_AGENT_ID} joined")
        shots.take("other-agent-took-it")

        item.get_by_role("button", name=re.compile("^Take over")).click()
        expect(agent.locator("#queue-notice")).to_have_text(
            f"Customer {session[-6:]}: taken by {OTHER_AGENT_ID}"
        )
        expect(item).to_have_count(0)
        expect(agent.locator("#queue-empty")).to_be_visible()
        expect(agent.locator("#conv-empty")).to_be_visible()
        shots.take("taken-by-other-agent")
