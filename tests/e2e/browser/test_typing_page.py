""" "… is typing" both ways, in a real headless Chromium against the real services: the agent
sees the customer typing in the open chat, the customer sees the agent typing, each
indicator goes away on the message or after a few seconds without news, and an internal
note being written never tells the customer. Screenshots go to
``test-output/browser/<test name>/``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.browser.harness import (
    AGENT_ID,
    Stack,
    agent_says,
    chat_with_agent,
    open_pages,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _typing_posts(page: Page) -> list[str]:
    """The typing signals ``page`` sends, as they leave it."""
    sent: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/typing"):
            sent.append(request.post_data or "")

    page.on("request", seen)
    return sent


def _is_typing_signal(typing: bool) -> Callable[[Request], bool]:
    body = '{"typing":true}' if typing else '{"typing":false}'
    return lambda r: r.method == "POST" and r.url.endswith("/typing") and r.post_data == body


def test_each_side_sees_the_other_typing_and_a_note_stays_silent(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        chat_with_agent(pages, stack, "Mei")

        # The customer types: the agent's open chat says so; sending hides it.
        customer.get_by_label("Your message").press_sequentially("Where is my par")
        indicator = agent.locator("#conv-typing")
        expect(indicator).to_be_visible()
        expect(indicator).to_have_text("Mei is typing")
        shots.take("agent-sees-the-customer-typing")
        customer.get_by_label("Your message").press_sequentially("cel?")
        customer.get_by_label("Your message").press("Enter")
        expect(agent.locator('#transcript li[data-sender="customer"]')).to_contain_text(
            "Where is my parcel?"
        )
        expect(indicator).to_be_hidden()

        # The agent types: the customer sees who; it goes away a few seconds after the
        # agent stops (no message came).
        agent_box = agent.get_by_label("Reply to the customer")
        agent_box.press_sequentially("Let me check")
        peer = customer.locator("#peer-typing")
        expect(peer).to_be_visible()
        expect(peer).to_have_text(f"Agent {AGENT_ID} is typing")
        shots.take("customer-sees-the-agent-typing")
        customer.set_viewport_size({"width": 390, "height": 760})
        customer.screenshot(path=shots.folder / "customer-sees-the-agent-typing-390.png")
        expect(peer).to_be_hidden(timeout=15_000)
        # Emptying the box says "stopped" (that signal has left before the note's part).
        with agent.expect_request(_is_typing_signal(False)):
            agent_box.fill("")

        # Writing an internal note sends no typing signal at all.
        posts = _typing_posts(agent)
        agent.get_by_label("Internal note").check()
        agent_box.press_sequentially("VIP customer, be quick")
        agent_box.press("Enter")
        expect(agent.locator("#transcript li[data-sender='note']")).to_contain_text(
            "VIP customer, be quick"
        )
        assert posts == [], f"writing a note sent typing signals: {posts}"
        agent.get_by_label("Internal note").uncheck()
        agent_says(agent, "It ships today")
        expect(customer.locator('#log li[data-sender="agent"]')).to_contain_text("It ships today")
        assert len(posts) == 1, posts
        assert '"typing":true' in posts[0], posts
        expect(peer).to_be_hidden()
        shots.take("note-written-reply-sent")
