"""Attachments on the pages, in a real headless Chromium against real services: the
customer sends a photo and the agent sees its thumbnail; the agent sends a PDF and the
customer sees a chip with its name and size; a file too big and a fake picture are refused
with a clear message. Screenshots go to ``test-output/browser/<test name>/``, on a phone's
width too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.browser.harness import (
    Stack,
    customer_says,
    open_pages,
    sign_in_agent,
    start_chat,
    start_stack,
    take_over,
)
from tests.support import files
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LIMIT = 300_000


@pytest.fixture
def stack(redis_server: RedisServer) -> Iterator[Stack]:
    with start_stack(redis_server, {"ATTACHMENT_MAX_BYTES": str(LIMIT)}) as deployed:
        yield deployed


def _loaded(image: Locator) -> None:
    """The thumbnail is on screen and its picture came (the cookie let it through)."""
    expect(image).to_be_visible()
    image.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )


def test_files_both_ways_and_refusals_people_understand(
    stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    photo = tmp_path / "beach photo.jpg"
    photo.write_bytes(files.jpeg((1200, 800)))
    invoice = tmp_path / "invoice-2026.pdf"
    invoice.write_bytes(files.pdf())
    huge = tmp_path / "huge.png"
    huge.write_bytes(files.png() + bytes(LIMIT))  # a picture with a long tail: too big
    fake = tmp_path / "cute-cat.png"
    fake.write_bytes(files.HTML)

    with open_pages(request.node.name) as pages:
        customer, agent, shots = pages.customer, pages.agent, pages.shots
        sign_in_agent(agent, stack.workbench.url)
        session = start_chat(customer, stack.chatbot.url, display_name="Ana")
        customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
        expect(customer.locator("#status-text")).to_contain_text("Waiting for an agent")
        take_over(agent, session)
        customer_says(customer, "Here is the damaged parcel:")

        # The customer sends a photo: a thumbnail on both pages.
        expect(customer.get_by_role("button", name="Attach a picture or a PDF")).to_be_visible()
        customer.locator("#attach-input").set_input_files(photo)
        mine = customer.locator('#log li[data-sender="customer"] .attachment-image img')
        _loaded(mine)
        theirs = agent.locator('#transcript li[data-sender="customer"] .attachment-image img')
        _loaded(theirs)
        expect(theirs).to_have_attribute("alt", "beach photo.jpg")
        link = agent.locator('#transcript li[data-sender="customer"] a.attachment-image')
        expect(link).to_have_attribute("href", re.compile(rf"/api/sessions/{session}/attachments/"))

        # The agent answers with a PDF: a chip with its name and size on both pages.
        agent.locator("#attach-input").set_input_files(invoice)
        chip = customer.locator('#log li[data-sender="agent"] .attachment-file')
        expect(chip).to_contain_text("invoice-2026.pdf")
        expect(chip).to_contain_text(re.compile(r"\d+ (bytes|KB)"))
        expect(chip.locator(".attachment-icon")).to_have_text("PDF")
        expect(
            agent.locator('#transcript li[data-sender="agent"] .attachment-file')
        ).to_contain_text("invoice-2026.pdf")
        # The chip's link gives the PDF itself, to the customer's browser (its cookie).
        href = chip.get_attribute("href")
        assert href
        answer = customer.request.get(stack.chatbot.url + href)
        assert answer.status == 200
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.body() == invoice.read_bytes()
        shots.take("a-photo-and-a-pdf")

        # Too big: refused before sending, saying the limit.
        customer.locator("#attach-input").set_input_files(huge)
        expect(customer.locator("#chat-error")).to_contain_text("files up to 292 KB can be sent")
        # A web page named .png: the server reads its bytes and says no; the page says why.
        customer.locator("#attach-input").set_input_files(fake)
        expect(customer.locator("#chat-error")).to_contain_text(
            "Not sent: this kind of file is not accepted"
        )
        expect(customer.locator("#log .attachment")).to_have_count(2)
        shots.take("refused")

        customer.set_viewport_size({"width": 390, "height": 844})  # a phone
        customer.locator("#log").evaluate("log => log.scrollTop = 0")
        customer.screenshot(path=shots.folder / "files-on-a-phone.png", full_page=True)
        agent.set_viewport_size({"width": 390, "height": 844})
        agent.screenshot(path=shots.folder / "files-agent-on-a-phone.png", full_page=True)
        _not_overflowing(customer)
        _not_overflowing(agent)

        # The record's history page shows them too (found by the file's name).
        agent.set_viewport_size({"width": 1180, "height": 760})
        agent.get_by_role("link", name="History").click()
        expect(agent).to_have_title("History · Agent workbench")
        result = agent.locator(f'.record-result[data-session="{session}"]')
        agent.get_by_role("searchbox", name="Search messages").fill("invoice-2026")
        for _ in range(50):
            agent.get_by_role("button", name="Search").click()
            if result.count():
                break
            agent.wait_for_timeout(200)  # between two searches (a poll, with a bound)
        result.click()
        transcript = agent.locator("#transcript")
        _loaded(transcript.locator(".msg-customer .attachment-image img"))
        expect(transcript.locator(".msg-agent .attachment-file")).to_contain_text(
            "invoice-2026.pdf"
        )
        agent.screenshot(path=shots.folder / "files-in-the-history.png", full_page=True)


def _not_overflowing(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"
