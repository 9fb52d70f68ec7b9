"""The workbench on a phone, in a real headless Chromium against the real services.
Screenshots go to ``test-output/browser/<test name>/``."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.harness import Stack, chat_with_agent, open_pages

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_the_workbench_fits_a_phone(stack: Stack, request: pytest.FixtureRequest) -> None:
    """An agent on a 390 px phone: nothing wider than the screen, and the queue, the chat and
    the reply box are all reachable by scrolling down."""
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        agent.set_viewport_size({"width": 390, "height": 844})
        chat_with_agent(pages, stack, "Mei")
        customer.get_by_label("Your message").press_sequentially("Hello from my phone")
        customer.get_by_label("Your message").press("Enter")
        expect(agent.locator('#transcript li[data-sender="customer"]')).to_contain_text(
            "Hello from my phone"
        )
        agent.screenshot(path=shots.folder / "workbench-390.png", full_page=True)
        overflow = agent.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, f"the workbench is {overflow} px wide on a 390 px screen"
        for part in ("#queue-title", "#mine", "#transcript", "#reply-input", "#send"):
            agent.locator(part).scroll_into_view_if_needed()
            expect(agent.locator(part)).to_be_in_viewport()
