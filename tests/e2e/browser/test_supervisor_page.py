"""The supervisor's live view in a real Chromium against real services: the team, the queue
and the active chats live; a chat followed read-only; a whisper its agent sees and the
customer never does; a takeover the agent's page and the customer's see. A plain agent has
no such view (and the API says 403). Screenshots in ``test-output/browser/<test name>/``,
at desktop width and at 390 px."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from infrastructure.auth.passwords import hash_password
from tests.e2e.browser.harness import (
    AGENT_ID,
    AGENT_PASSWORD,
    OTHER_AGENT_ID,
    OTHER_AGENT_PASSWORD,
    Stack,
    agent_says,
    customer_says,
    open_pages,
    sign_in_agent,
    start_chat,
    start_stack,
    take_over,
)
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LEAD_ID = "lead"
LEAD_PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture
def team_stack(redis_server: RedisServer) -> Iterator[Stack]:
    accounts = {
        AGENT_ID: hash_password(AGENT_PASSWORD),
        OTHER_AGENT_ID: hash_password(OTHER_AGENT_PASSWORD),
        LEAD_ID: hash_password(LEAD_PASSWORD),
    }
    env = {"AGENTS": json.dumps(accounts), "SUPERVISORS": LEAD_ID}
    with start_stack(redis_server, env) as deployed:
        yield deployed


def sign_in_lead(page: Page, workbench_url: str) -> None:
    page.goto(workbench_url + "/")
    page.get_by_label("Agent ID").fill(LEAD_ID)
    page.get_by_label("Password").fill(LEAD_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#agent-name")).to_have_text(LEAD_ID)
    expect(page.locator("#connection")).to_have_text("Live")


def ask_for_a_human(customer: Page) -> None:
    customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
    expect(customer.locator("#status-text")).to_contain_text("Waiting for an agent")


def test_the_supervisor_watches_whispers_and_takes_over(
    team_stack: Stack, request: pytest.FixtureRequest
) -> None:
    stack = team_stack
    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        browser = agent.context.browser
        assert browser is not None
        lead_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        lead = lead_context.new_page()
        errors: list[str] = []
        lead.on("pageerror", lambda exc: errors.append(str(exc)))
        folder = shots.folder

        sign_in_agent(agent, stack.workbench.url)
        expect(agent.get_by_role("button", name="Team live view")).to_be_hidden()
        session = start_chat(customer, stack.chatbot.url, display_name="Mei")
        customer_says(customer, "My parcel is lost")
        ask_for_a_human(customer)
        take_over(agent, session)

        # The live view: agents with presence and load, the active chat with its agent.
        sign_in_lead(lead, stack.workbench.url)
        lead.get_by_role("button", name="Team live view").click()
        expect(lead.locator("#supervise")).to_be_visible()
        expect(lead.locator("#desk")).to_be_hidden()
        alice_row = lead.locator(f'#sv-agents tr[data-agent="{AGENT_ID}"]')
        expect(alice_row).to_have_attribute("data-status", "online")
        expect(alice_row.locator(".sv-load")).to_have_text("1/3")
        expect(lead.locator(f'#sv-agents tr[data-agent="{OTHER_AGENT_ID}"]')).to_have_attribute(
            "data-status", "offline"
        )
        expect(lead.locator(f'#sv-agents tr[data-agent="{LEAD_ID}"] .sv-tag')).to_have_text(
            "supervisor"
        )
        chat = lead.locator(f'#sv-chats li[data-session="{session}"]')
        expect(chat).to_contain_text("Mei")
        expect(chat).to_contain_text(f"with {AGENT_ID}")

        # Live, from the stream: a second customer joins the queue with a wait counting up;
        # bob comes online.
        second = browser.new_context(viewport={"width": 560, "height": 820}, locale="en-US")
        waiting_page = second.new_page()
        waiting_session = start_chat(waiting_page, stack.chatbot.url, display_name="Li")
        ask_for_a_human(waiting_page)
        row = lead.locator(f'#sv-queue li[data-session="{waiting_session}"]')
        expect(row).to_contain_text("Li")
        expect(row.locator(".sv-waited")).to_have_text(re.compile(r"^0:0[1-9]|^0:[1-5]\d"))
        expect(lead.locator("#sv-queue-length")).to_have_text("1")
        lead.screenshot(path=folder / "01-someone-waiting-lead.png")
        with httpx.Client(base_url=stack.workbench.url, timeout=10) as http:
            login = http.post(
                "/api/agents/login",
                json={"agent_id": OTHER_AGENT_ID, "password": OTHER_AGENT_PASSWORD},
            )
            bob = {"Authorization": f"Bearer {login.json()['token']}"}
            assert login.json()["roles"] == []
            http.post(
                f"/api/sessions/{waiting_session}/takeover",
                json={"agent_id": OTHER_AGENT_ID},
                headers=bob,
            ).raise_for_status()
            # A plain agent: no overview, a message saying why.
            refused = http.get("/api/supervisor/overview", headers=bob)
            assert refused.status_code == 403
            assert "SUPERVISORS" in refused.json()["detail"]
        expect(row).to_have_count(0)
        expect(lead.locator(f'#sv-chats li[data-session="{waiting_session}"]')).to_contain_text(
            f"with {OTHER_AGENT_ID}"
        )
        expect(lead.locator(f'#sv-agents tr[data-agent="{OTHER_AGENT_ID}"] .sv-load')).to_have_text(
            "1/3"
        )
        lead.screenshot(path=folder / "01-live-view-lead.png", full_page=True)

        # Read-only: the transcript, live, and no reply box.
        chat.get_by_role("button").click()
        expect(lead.locator("#sv-view-title")).to_have_text("Mei")
        expect(lead.locator(".readonly-tag")).to_have_text("Read-only")
        view = lead.locator("#sv-transcript")
        expect(view.locator('li[data-sender="customer"]')).to_contain_text("My parcel is lost")
        expect(lead.get_by_label("Reply to the customer")).to_be_hidden()
        customer_says(customer, "It was due on Monday")
        expect(view.locator('li[data-sender="customer"]', has_text="due on Monday")).to_have_count(
            1
        )
        agent_says(agent, "Let me check the courier.")
        expect(view.locator('li[data-sender="agent"]', has_text="the courier")).to_have_count(1)

        # A whisper: the agent sees it in the transcript, the customer never.
        lead.get_by_label(f"Whisper to {AGENT_ID}").fill("Offer the express refund.")
        lead.get_by_role("button", name="Whisper").click()
        expect(view.locator('li[data-sender="note"]')).to_contain_text("Offer the express refund.")
        whisper = agent.locator('#transcript li[data-sender="note"]')
        expect(whisper).to_contain_text("Offer the express refund.")
        expect(whisper).to_contain_text(f"Internal note · {LEAD_ID}")
        expect(agent.locator("#queue-notice")).to_have_text(f"Note from {LEAD_ID} on Mei")
        lead.screenshot(path=folder / "02-read-only-with-whisper-lead.png", full_page=True)
        agent.screenshot(path=folder / "02-whispered-to-agent.png", full_page=True)
        lead.set_viewport_size({"width": 390, "height": 844})
        lead.screenshot(path=folder / "03-read-only-phone-lead.png", full_page=True)
        lead.set_viewport_size({"width": 1280, "height": 800})

        # Take over is asked once more, naming who loses the chat; "Keep watching" moves nothing.
        lead.get_by_role("button", name=f"Take over from {AGENT_ID}").click()
        confirm = lead.get_by_role("alertdialog")
        expect(confirm).to_contain_text(f"Take Mei from {AGENT_ID}?")
        expect(lead.get_by_role("button", name=f"Take over from {AGENT_ID}")).to_be_hidden()
        lead.screenshot(path=folder / "04-takeover-asked-lead.png", full_page=True)
        confirm.get_by_role("button", name="Keep watching").click()
        expect(confirm).to_be_hidden()
        lead.set_viewport_size({"width": 390, "height": 844})  # on a phone: the question in sight
        lead.get_by_role("button", name=f"Take over from {AGENT_ID}").click()
        expect(confirm.get_by_role("button", name="Keep watching")).to_be_in_viewport(ratio=1)
        lead.screenshot(path=folder / "04-takeover-asked-phone-lead.png")
        confirm.get_by_role("button", name="Keep watching").click()
        expect(confirm).to_be_hidden()
        lead.set_viewport_size({"width": 1280, "height": 800})
        expect(lead.locator("#sv-view-status")).to_have_text(f"With {AGENT_ID} · you are watching")
        expect(agent.locator("#mine")).to_contain_text("Mei")  # still alice's

        # Confirmed: the chat moves to the lead's desk; alice's page drops it saying why;
        # the customer sees the lead join.
        lead.get_by_role("button", name=f"Take over from {AGENT_ID}").click()
        confirm.get_by_role("button", name="Take over").click()
        expect(lead.locator("#desk")).to_be_visible()
        expect(lead.locator("#conv-title")).to_have_attribute("title", session)
        expect(lead.locator("#mine")).to_contain_text("Mei")
        expect(lead.locator('#transcript li[data-sender="customer"]').first).to_contain_text(
            "My parcel is lost"
        )
        expect(agent.locator("#queue-notice")).to_have_text(
            f"{LEAD_ID} (supervisor) took over your chat with Mei"
        )
        expect(agent.locator("#mine-empty")).to_be_visible()
        expect(customer.locator("#status-text")).to_contain_text(f"Agent {LEAD_ID} joined")
        expect(customer.locator("#log")).to_contain_text(f"Agent {LEAD_ID} joined the chat")
        assert "Offer the express refund." not in customer.locator("#log").inner_text()
        lead.get_by_label("Reply to the customer").fill("Hello Mei, I am the team lead.")
        lead.get_by_label("Reply to the customer").press("Enter")
        expect(customer.locator('#log li[data-sender="agent"]').last).to_contain_text(
            "I am the team lead"
        )
        shots.take("taken-over")
        lead.screenshot(path=folder / "05-taken-over-lead.png", full_page=True)

        # Its own status is what it is, whatever order the snapshot and the event came in.
        expect(lead.locator("#presence")).to_have_value("online")
        # Its own line says supervisor too, whichever came first: its presence or the list.
        expect(lead.locator('#team li:has-text("(you)") .sv-tag')).to_have_text("supervisor")
        # Every team list hears the loads move.
        expect(lead.locator("#team li", has_text=AGENT_ID)).to_contain_text("online · 0/3")
        expect(agent.locator("#team li", has_text=LEAD_ID)).to_contain_text("online · 1/3")
        # The team list marks who can watch and take over (the agent's page too).
        expect(agent.locator("#team li", has_text=LEAD_ID).locator(".sv-tag")).to_have_text(
            "supervisor"
        )
        expect(agent.locator(f'#team li:has-text("{AGENT_ID} (you)") .sv-tag')).to_have_count(0)
        expect(lead.locator('#team li[data-status="online"]', has_text=LEAD_ID)).to_have_count(1)

        # The live view after it: the chat is the lead's, alice holds nothing.
        lead.get_by_role("button", name="Team live view").click()
        expect(lead.locator(f'#sv-chats li[data-session="{session}"]')).to_contain_text(
            f"with {LEAD_ID}"
        )
        expect(alice_row.locator(".sv-load")).to_have_text("0/3")
        lead.set_viewport_size({"width": 390, "height": 844})
        lead.screenshot(path=folder / "05-live-view-phone-lead.png", full_page=True)
        agent.set_viewport_size({"width": 390, "height": 844})
        agent.screenshot(path=folder / "05-taken-from-phone-agent.png", full_page=True)

        # The workbench restarts: both streams come back, the view from a new snapshot, and
        # goes on live (a new customer waiting shows up).
        lead.set_viewport_size({"width": 1280, "height": 800})
        stack.restart_workbench()
        expect(lead.locator("#connection")).to_have_text("Live", timeout=20_000)
        third = waiting_page.context.new_page()
        later = start_chat(third, stack.chatbot.url, display_name="Zhao")
        ask_for_a_human(third)
        expect(lead.locator(f'#sv-queue li[data-session="{later}"]')).to_contain_text("Zhao")
        expect(lead.locator(f'#sv-chats li[data-session="{session}"]')).to_contain_text(
            f"with {LEAD_ID}"
        )
        for who in (AGENT_ID, LEAD_ID):  # both pages' streams are back: online
            expect(lead.locator(f'#sv-agents tr[data-agent="{who}"]')).to_have_attribute(
                "data-status", "online"
            )
        lead.screenshot(path=folder / "06-after-a-restart-lead.png", full_page=True)
        second.close()
        lead_context.close()
        assert not errors, errors
