"""The built-in bot: recognising a request for a human, FAQ answers, the fallback,
and which bot the settings pick."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from infrastructure.config import Settings
from infrastructure.sessions.models import Session, SessionStatus, ms_to_datetime
from products.ai_chatbot.responders import (
    FaqResponder,
    OpenAICompatResponder,
    Responder,
    build_responder,
    wants_human,
)
from products.ai_chatbot.responders.faq import FALLBACK_EN, FALLBACK_ZH, HANDOFF_EN, HANDOFF_ZH

SESSION = Session(
    session_name="s1",
    status=SessionStatus.AI,
    created_at=ms_to_datetime(0),
    updated_at=ms_to_datetime(0),
)


@pytest.mark.parametrize(
    "text",
    [
        "转人工",
        "我要转人工！",
        "人工",
        "请帮我接人工客服",
        "找个真人",
        "human",
        "HUMAN please",
        "I want to talk to a human.",
        "Can I speak to an agent?",
        "Agent!",
        "get me a real person",
        "a REAL   PERSON please",
        "agents, anyone?",
    ],
)
def test_wants_human(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "what's on the agenda?",
        "that is not very humane",
        "humanity",
        "a chemical reagent",
        "agentic workflows",
        "人工智能是什么？",
        "你好",
        "where is my parcel?",
        "realistic personal data",
    ],
)
def test_does_not_want_human(text: str) -> None:
    assert not wants_human(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你们的营业时间是几点？", "营业时间"),
        ("what are your opening hours?", "Opening hours"),
        ("我想退款", "退款"),
        ("How do I get a refund?", "Refunds"),
        ("快递什么时候到？", "配送"),
        ("when will my order be shipped", "Shipping"),
        ("hi, where is my parcel?", "Shipping"),  # the topic wins over the greeting
        ("忘记密码怎么办", "重置密码"),
        ("I forgot my password", "reset your password"),
        ("你好", "您好"),
        ("Hello there", "Hello!"),
    ],
)
def test_faq_answers(text: str, expected: str) -> None:
    assert expected in FaqResponder().answer(text)


def test_faq_does_not_match_inside_words() -> None:
    # "relationship" holds "ship", "this" holds "hi"
    assert FaqResponder().answer("this relationship") == FALLBACK_EN


def test_fallback_says_how_to_reach_a_human() -> None:
    bot = FaqResponder()
    assert bot.answer("量子物理") == FALLBACK_ZH
    assert bot.answer("tell me about quantum physics") == FALLBACK_EN
    for fallback in (FALLBACK_ZH, FALLBACK_EN):
        assert "转人工" in fallback
        assert "human" in fallback


def test_handoff_acknowledged_in_the_customers_language() -> None:
    bot = FaqResponder()
    assert bot.answer("转人工") == HANDOFF_ZH
    assert bot.answer("human please") == HANDOFF_EN


async def test_faq_reply_is_one_chunk() -> None:
    chunks = [c async for c in FaqResponder().reply(SESSION, [], "refund")]
    assert len(chunks) == 1
    assert "Refunds" in chunks[0]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def test_factory_defaults_to_the_faq_bot(http: httpx.AsyncClient) -> None:
    responder: Responder = build_responder(Settings(_env_file=None), http)
    assert isinstance(responder, FaqResponder)


def test_factory_builds_the_openai_adapter(http: httpx.AsyncClient) -> None:
    settings = Settings(
        _env_file=None,
        BOT_RESPONDER="openai",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1/",
        OPENAI_MODEL="tiny",
    )
    responder = build_responder(settings, http)
    assert isinstance(responder, OpenAICompatResponder)
    assert responder.url == "http://127.0.0.1:9/v1/chat/completions"
    assert responder.model == "tiny"
