"""The browser tests' harness: Redis and both services as real processes (:func:`start_stack`),
and a headless Chromium from Debian driven by Playwright, with a screenshot recorder
(:func:`open_pages`)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Error, Page, expect, sync_playwright

from infrastructure.auth.passwords import hash_password
from tests.support.processes import REPO_ROOT, ServiceProcess
from tests.support.redis_server import RedisServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHATBOT_APP = "products.ai_chatbot.main:app"
WORKBENCH_APP = "products.agent_workbench.main:app"
OUTPUT_ROOT = REPO_ROOT / "test-output" / "browser"

AGENT_ID = "alice"
AGENT_PASSWORD = secrets.token_urlsafe(16)
#: A second agent, who takes sessions through the API (the 409 test).
OTHER_AGENT_ID = "bob"
OTHER_AGENT_PASSWORD = secrets.token_urlsafe(16)

#: Every expect() polls up to this long (the default 5 s is tight for a loaded CI box).
expect.set_options(timeout=10_000)


@dataclass
class Stack:
    """Redis, one chatbot and one workbench service; the chatbot may be restarted."""

    env: dict[str, str]
    chatbot: ServiceProcess
    workbench: ServiceProcess
    started: list[ServiceProcess] = field(default_factory=list)

    def restart_chatbot(self) -> ServiceProcess:
        """A new chatbot process on the same port (the page's URLs stay valid)."""
        self.chatbot = self._restarted(self.chatbot, CHATBOT_APP)
        return self.chatbot

    def restart_workbench(self) -> ServiceProcess:
        """A new workbench process on the same port: every agent stream drops."""
        self.workbench = self._restarted(self.workbench, WORKBENCH_APP)
        return self.workbench

    def _restarted(self, process: ServiceProcess, app: str) -> ServiceProcess:
        process.stop()
        again = ServiceProcess(app, env=self.env, port=process.port)
        self.started.append(again)
        return again.start()


@contextmanager
def start_stack(
    redis_server: RedisServer, extra_env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    env = {
        "REDIS_URL": redis_server.url,
        "USE_REDIS_SSE": "true",
        "AUTH_SECRET": secrets.token_urlsafe(48),
        "AGENTS": json.dumps(
            {
                AGENT_ID: hash_password(AGENT_PASSWORD),
                OTHER_AGENT_ID: hash_password(OTHER_AGENT_PASSWORD),
            }
        ),
        "SSE_HEARTBEAT_SECONDS": "1",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "BOT_RESPONDER": "faq",
        "LOG_LEVEL": "WARNING",
        # The page tests pick chats from the queue by hand.
        "ASSIGNMENT_MODE": "manual",
        **(extra_env or {}),
    }
    # The record (issue 21): one SQLite file both services share.
    record_dir = Path(tempfile.mkdtemp(prefix="record-"))
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{record_dir / 'record.sqlite3'}"
    chatbot = ServiceProcess(CHATBOT_APP, env=env)
    workbench = ServiceProcess(WORKBENCH_APP, env=env)
    deployed = Stack(env, chatbot, workbench, started=[chatbot, workbench])
    try:
        chatbot.start()
        workbench.start()
        yield deployed
    finally:
        for process in deployed.started:
            process.stop()
        shutil.rmtree(record_dir, ignore_errors=True)


@dataclass
class Pages:
    customer: Page
    agent: Page
    shots: Screenshots


@contextmanager
def open_pages(test_name: str) -> Iterator[Pages]:
    """Debian's Chromium with two isolated contexts: a customer and an agent.

    Called from the test body (not a fixture) so that a missing browser is a test
    *failure* that says how to install it, never an error or a skip.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium;"
            " install it with `apt-get install chromium` (`make test` does it as root)",
            pytrace=False,
        )
    folder = OUTPUT_ROOT / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            customer = browser.new_context(viewport={"width": 560, "height": 820}, locale="en-US")
            agent = browser.new_context(viewport={"width": 1180, "height": 760}, locale="en-US")
            customer_page, agent_page = customer.new_page(), agent.new_page()
            errors: list[str] = []
            for role, page in (("customer", customer_page), ("agent", agent_page)):
                page.on("pageerror", _collect(errors, role))
            yield Pages(customer_page, agent_page, Screenshots(folder, customer_page, agent_page))
            assert not errors, f"uncaught errors in the pages' scripts: {errors}"
        finally:
            browser.close()


def _collect(errors: list[str], role: str) -> Callable[[Error], None]:
    def collect(exc: Error) -> None:
        errors.append(f"{role}: {exc}")

    return collect


class Screenshots:
    """``NN-step-customer.png`` and ``NN-step-agent.png`` in the test's output folder."""

    def __init__(self, folder: Path, customer: Page, agent: Page) -> None:
        self.folder = folder
        self.customer = customer
        self.agent = agent
        self.count = 0

    def take(self, step: str) -> None:
        self.count += 1
        prefix = f"{self.count:02d}-{step}"
        self.customer.screenshot(path=self.folder / f"{prefix}-customer.png", full_page=True)
        self.agent.screenshot(path=self.folder / f"{prefix}-agent.png", full_page=True)


# --- What a person does on each page ---------------------------------------------------------


def sign_in_agent(page: Page, workbench_url: str, wait_live: bool = True) -> None:
    page.goto(workbench_url + "/")
    page.get_by_label("Agent ID").fill(AGENT_ID)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#agent-name")).to_have_text(AGENT_ID)
    if wait_live:
        expect(page.locator("#connection")).to_have_text("Live")


def start_chat(page: Page, chatbot_url: str, display_name: str = "") -> str:
    """Open the chat page, start a chat (as ``display_name`` if given), wait for its
    stream; the session's name."""
    page.goto(chatbot_url + "/")
    if display_name:
        page.get_by_label("Your name").fill(display_name)
    page.get_by_role("button", name="Start a chat").click()
    expect(page.locator("#connection")).to_have_text("Live")
    expect(page.locator("#status-text")).to_have_text(re.compile("Chatting with the bot"))
    name: str = page.evaluate("JSON.parse(sessionStorage.getItem('cs-chat-session')).name")
    return name


def customer_says(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")  # Enter sends
    expect(page.locator('#log li[data-sender="customer"]', has_text=text)).to_have_count(1)


def agent_says(page: Page, text: str) -> None:
    box = page.get_by_label("Reply to the customer")
    box.fill(text)
    box.press("Enter")
    expect(page.locator('#transcript li[data-sender="agent"]', has_text=text)).to_have_count(1)


def ask_for_a_human(customer: Page) -> None:
    """转人工 by its button; the page says it waits (the harness assigns by hand)."""
    customer.get_by_role("button", name=re.compile("talk to a human", re.I)).click()
    expect(customer.locator("#status-text")).to_contain_text("Waiting for an agent")


def chat_with_agent(pages: Pages, stack: Stack, display_name: str = "") -> str:
    """The usual start: the agent signs in, a customer (``display_name``) starts a chat and
    asks for a human, the agent takes it over and the customer sees it. The session's name."""
    sign_in_agent(pages.agent, stack.workbench.url)
    session = start_chat(pages.customer, stack.chatbot.url, display_name=display_name)
    ask_for_a_human(pages.customer)
    take_over(pages.agent, session)
    expect(pages.customer.locator("#status-text")).to_contain_text(f"Agent {AGENT_ID} joined")
    return session


def take_over(page: Page, session_name: str) -> None:
    item = page.locator(f'#queue li[data-session="{session_name}"]')
    item.get_by_role("button", name=re.compile("^Take over")).click()
    expect(page.locator("#conv-title")).to_have_attribute("title", session_name)
    expect(item).to_have_count(0)
