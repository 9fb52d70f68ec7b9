"""The desk on the pages, in a real headless Chromium against real services: held chats
from the server in a new tab, log out handing them back, close then rating, no badge
inflation after the stream drops, a background notification, a clear refusal of a text too
long. Screenshots go to ``test-output/browser/<test name>/``."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browser.harness import (
    AGENT_ID,
    OTHER_AGENT_ID,
    OTHER_AGENT_PASSWORD,
    Stack,
    agent_says,
    ask_for_a_human,
    chat_with_agent,
    customer_says,
    open_pages,
    sign_in_agent,
    start_chat,
    take_over,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_a_new_tab_shows_held_chats_and_log_out_hands_them_back(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        sign_in_agent(agent, stack.workbench.url)
        session = start_chat(customer, stack.chatbot.url, display_name="Mei")
        customer_says(customer, "My order never came")
        ask_for_a_human(customer)
        row = agent.locator(f'#queue li[data-session="{session}"]')
        expect(row.locator(".q-name")).to_have_text("Mei")
        expect(row.locator(".q-reason")).to_have_text("My order never came")
        shots.take("queue-row-names-the-customer")
        take_over(agent, session)
        expect(customer.locator("#status-text")).to_contain_text(f"Agent {AGENT_ID} joined")

        # A second tab (its own sessionStorage): sign in again, the chat is there.
        tab = agent.context.new_page()
        sign_in_agent(tab, stack.workbench.url)
        expect(tab.locator("#mine li")).to_have_count(1)
        expect(tab.locator("#mine")).to_contain_text("Mei")
        expect(tab.locator("#conv-title")).to_have_text("Mei")
        expect(tab.locator('#transcript li[data-sender="customer"]')).to_contain_text(
            "My order never came"
        )
        tab.screenshot(path=shots.folder / "new-tab-holds-the-chat.png", full_page=True)

        # Log out asks; handing back puts the customer first in the queue, told so.
        tab.get_by_role("button", name="Log out").click()
        dialog = tab.locator("#logout-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("You hold 1 chat")
        tab.screenshot(path=shots.folder / "log-out-asks.png", full_page=True)
        dialog.get_by_role("button", name="Hand back and log out").click()
        expect(tab.get_by_role("button", name="Sign in")).to_be_visible()
        expect(customer.locator("#status-text")).to_have_text(
            re.compile("you are number 1 in the queue")
        )
        notice = customer.locator('#log li[data-sender="system"]')
        expect(notice).to_contain_text("Your agent has left. You are number 1 in the queue.")
        # The first tab hears it lost the chat; it is waiting again.
        expect(agent.locator("#mine-empty")).to_be_visible()
        expect(agent.locator(f'#queue li[data-session="{session}"]')).to_be_visible()
        shots.take("handed-back")


def test_close_then_the_customer_rates_once(stack: Stack, request: pytest.FixtureRequest) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        session = chat_with_agent(pages, stack, "Ana")
        agent_says(agent, "Your refund is on its way.")
        agent.get_by_role("button", name="Close chat").click()
        expect(agent.locator("#queue-notice")).to_have_text("Ana: chat closed")
        expect(customer.locator("#status-text")).to_contain_text("This chat has ended")
        rating = customer.locator("#rating")
        expect(rating).to_be_visible()
        expect(customer.locator("#composer")).to_be_hidden()
        shots.take("asked-for-a-rating")
        customer.set_viewport_size({"width": 390, "height": 844})  # a phone
        customer.screenshot(path=shots.folder / "rating-on-a-phone.png", full_page=True)

        customer.get_by_role("button", name="4 of 5").click()
        customer.get_by_label("A comment (optional)").fill("Quick and kind")
        customer.get_by_role("button", name="Send rating").click()
        expect(customer.locator("#rating-thanks")).to_be_visible()
        expect(customer.get_by_role("button", name="Send rating")).to_be_disabled()
        expect(agent.locator("#queue-notice")).to_have_text("Ana rated the chat 4/5")
        shots.take("rated")
        with httpx.Client(base_url=stack.chatbot.url, timeout=10) as http:
            token = customer.evaluate("JSON.parse(sessionStorage.getItem('cs-chat-session')).token")
            answer = http.get(
                f"/api/sessions/{session}", headers={"Authorization": f"Bearer {token}"}
            ).json()
        assert (answer["rating"], answer["rating_comment"]) == (4, "Quick and kind")


def test_the_badge_does_not_grow_after_the_stream_drops(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        # Three transfer requests on the broadcast channel before the agent's page opens.
        start_chat(customer, stack.chatbot.url)
        old: list[str] = []
        for _ in range(3):
            old.append(customer.evaluate(_SESSION_NAME))
            ask_for_a_human(customer)
            customer.get_by_role("button", name="New chat").click()
            expect(customer.locator("#status-text")).to_have_text(
                re.compile("Chatting with the bot")
            )
        sign_in_agent(agent, stack.workbench.url)
        expect(agent.locator("#queue-length")).to_have_text("3")
        expect(agent.locator("#badge")).to_be_hidden()  # waiting before the page: not news
        with httpx.Client(base_url=stack.workbench.url, timeout=10) as http:
            login = http.post(
                "/api/agents/login",
                json={"agent_id": OTHER_AGENT_ID, "password": OTHER_AGENT_PASSWORD},
            )
            bob = {"Authorization": f"Bearer {login.json()['token']}"}
            for name in old:  # another agent takes them
                http.post(
                    f"/api/sessions/{name}/takeover", json={"agent_id": OTHER_AGENT_ID}, headers=bob
                ).raise_for_status()
        expect(agent.locator("#queue-length")).to_have_text("0")
        session = customer.evaluate(_SESSION_NAME)
        ask_for_a_human(customer)
        expect(agent.locator("#badge")).to_have_text("1 new")
        take_over(agent, session)
        expect(agent.locator("#badge")).to_be_hidden()

        # The stream drops (its service restarts) and comes back with its Last-Event-ID:
        # no old request comes back, nothing is counted again.
        stack.restart_workbench()
        expect(agent.locator("#connection")).to_have_text("Live", timeout=20_000)
        agent_says(agent, "Back after a blip")
        expect(agent.locator("#queue-length")).to_have_text("0")
        expect(agent.locator("#queue li")).to_have_count(0)
        expect(agent.locator("#badge")).to_be_hidden()
        expect(agent).to_have_title("Agent workbench")
        expect(agent.locator("#mine li")).to_have_count(1)
        shots.take("after-the-drop")


_SESSION_NAME = "JSON.parse(sessionStorage.getItem('cs-chat-session')).name"


def test_a_background_tab_gets_a_notification(stack: Stack, request: pytest.FixtureRequest) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        agent.context.grant_permissions(["notifications"], origin=stack.workbench.url)
        # Headless Chromium never hides a tab: the test says when it is hidden, and records
        # the notifications the page shows.
        agent.add_init_script(
            """
            window.__hidden = false;
            Object.defineProperty(Document.prototype, "hidden", { get: () => window.__hidden });
            window.__notes = [];
            const Real = window.Notification;
            window.Notification = class extends Real {
              constructor(title, options) {
                super(title, options);
                window.__notes.push({ title, body: options && options.body });
              }
            };
            Object.defineProperty(window.Notification, "permission", {
              get: () => Real.permission,
            });
            """
        )
        sign_in_agent(agent, stack.workbench.url)
        agent.evaluate("window.__hidden = true")
        start_chat(customer, stack.chatbot.url, display_name="Lin")
        ask_for_a_human(customer)
        expect(agent).to_have_title("(1) Agent workbench")
        notes = agent.evaluate("window.__notes")
        assert notes == [{"title": "Agent workbench", "body": "Lin asks for an agent"}], notes
        shots.take("notified")


def test_a_text_too_long_is_refused_clearly_and_never_cut(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        sign_in_agent(agent, stack.workbench.url)
        session = start_chat(customer, stack.chatbot.url)
        long_text = "很" * 5000
        box = customer.get_by_label("Your message")
        box.fill(long_text)
        expect(customer.locator("#length")).to_have_text("5000 / 4000")
        box.press("Enter")
        expect(customer.locator("#chat-error")).to_have_text(
            "Too long to send: 5000 characters, at most 4000. Please shorten it (nothing was cut)."
        )
        assert len(box.input_value()) == 5000  # nothing was cut
        expect(customer.locator("#log li.msg")).to_have_count(0)
        shots.take("customer-refused")
        box.fill("很" * 3000)
        expect(customer.locator("#chat-error")).to_be_hidden()

        ask_for_a_human(customer)
        take_over(agent, session)
        reply = agent.get_by_label("Reply to the customer")
        reply.fill("x" * 5000)
        reply.press("Enter")
        expect(agent.locator("#conv-error")).to_contain_text("Too long to send: 5000 characters")
        assert len(reply.input_value()) == 5000
        shots.take("agent-refused")


def test_an_agent_transfers_a_chat_to_a_colleague_with_a_note(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        # bob works in a browser of his own.
        browser = agent.context.browser
        assert browser is not None
        bob_context = browser.new_context(viewport={"width": 1180, "height": 760})
        bob = bob_context.new_page()
        try:
            sign_in_agent(agent, stack.workbench.url)
            bob.goto(stack.workbench.url + "/")
            bob.get_by_label("Agent ID").fill(OTHER_AGENT_ID)
            bob.get_by_label("Password").fill(OTHER_AGENT_PASSWORD)
            bob.get_by_role("button", name="Sign in").click()
            expect(bob.locator("#connection")).to_have_text("Live")

            session = start_chat(customer, stack.chatbot.url, display_name="Ravi")
            ask_for_a_human(customer)
            take_over(agent, session)
            agent.get_by_role("button", name="Transfer").click()
            dialog = agent.locator("#transfer-dialog")
            expect(dialog).to_be_visible()
            expect(dialog.get_by_label("To")).to_have_value(OTHER_AGENT_ID)
            dialog.get_by_label(re.compile("Note for your colleague")).fill("Wants a refund")
            agent.screenshot(path=shots.folder / "transfer-dialog.png", full_page=True)
            dialog.get_by_role("button", name="Transfer", exact=True).click()

            expect(agent.locator("#queue-notice")).to_have_text(
                f"Ravi: transferred to {OTHER_AGENT_ID}"
            )
            expect(agent.locator("#mine-empty")).to_be_visible()
            expect(bob.locator("#mine")).to_contain_text("Ravi")
            expect(bob.locator("#queue-notice")).to_have_text(
                f"Ravi was transferred to you by {AGENT_ID}: “Wants a refund”"
            )
            expect(customer.locator("#status-text")).to_contain_text(
                f"Agent {OTHER_AGENT_ID} joined"
            )
            # The note is for agents: nothing of it on the customer's page.
            expect(customer.locator("body")).not_to_contain_text("refund")
            bob.screenshot(path=shots.folder / "bob-has-it.png", full_page=True)
            shots.take("transferred")
        finally:
            bob_context.close()


def test_each_side_sees_what_the_other_has_read(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        chat_with_agent(pages, stack, "Ada")
        customer_says(customer, "Is my order late?")
        # The agent has the chat open: the customer sees it was read.
        mine = customer.locator('#log li[data-sender="customer"]', has_text="Is my order late?")
        expect(mine.locator(".seen")).to_have_text("Seen")
        agent_says(agent, "Let me look.")
        reply = agent.locator('#transcript li[data-sender="agent"]', has_text="Let me look.")
        expect(reply.locator(".seen")).to_have_text("Seen")
        # One mark only, under the newest message read.
        expect(customer.locator(".seen")).to_have_count(1)
        shots.take("seen-both-ways")


def test_a_canned_reply_is_added_then_inserted_with_slash(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        chat_with_agent(pages, stack, "Mina")

        agent.get_by_role("button", name="Canned replies").click()
        dialog = agent.locator("#canned-dialog")
        dialog.get_by_label("Shortcut").fill("thanks")
        dialog.get_by_label("Reply").fill("Thank you, {customer_name}! {agent_name} here.")
        dialog.get_by_role("button", name="Add").click()
        expect(dialog.locator("#canned-list")).to_contain_text("/thanks")
        agent.screenshot(path=shots.folder / "canned-manager.png", full_page=True)
        dialog.get_by_role("button", name="Close").click()

        box = agent.get_by_label("Reply to the customer")
        box.fill("")
        box.press_sequentially("/th")
        picker = agent.locator("#canned-picker")
        expect(picker).to_be_visible()
        expect(picker.locator("li")).to_have_count(1)
        agent.screenshot(path=shots.folder / "canned-picker.png", full_page=True)
        box.press("Enter")  # inserts, does not send
        expect(box).to_have_value(f"Thank you, Mina! {AGENT_ID} here.")
        expect(picker).to_be_hidden()
        box.press("Enter")  # now it sends
        expect(customer.locator('#log li[data-sender="agent"]')).to_contain_text(
            f"Thank you, Mina! {AGENT_ID} here."
        )
        shots.take("sent")
