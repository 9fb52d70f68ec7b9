"""A rule bot that needs nothing from outside: a small bilingual FAQ table."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from infrastructure.hours.model import BusinessHours
from infrastructure.hours.service import opening_text
from infrastructure.sessions.models import ChatMessage, Session

from .base import wants_human

_CJK: Final = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True, slots=True)
class Faq:
    topic: str
    pattern: re.Pattern[str]
    zh: str
    en: str


def _faq(topic: str, zh_words: str, en_words: str, zh: str, en: str) -> Faq:
    # Chinese keywords match anywhere (no word boundaries in Chinese); English ones as
    # whole words, so that "shipping" matches but "relationship" does not.
    pattern = re.compile(rf"(?:{zh_words})|\b(?:{en_words})\b", re.IGNORECASE)
    return Faq(topic, pattern, zh, en)


#: Checked in order: specific topics before the greeting, so that
#: "hi, where is my parcel?" is answered about the parcel.
FAQS: Final = (
    _faq(
        "password_reset",
        "密码|登录不了|无法登录|登不上",
        r"password|passcode|reset|log\s?in|sign\s?in|locked\s+out",
        "重置密码：在登录页点击“忘记密码”，输入注册邮箱或手机号，按收到的链接或验证码设置新密码。"
        "链接 30 分钟内有效。",
        'To reset your password, click "Forgot password" on the sign-in page and enter your '
        "email or phone number; follow the link or code we send you. The link is valid for "
        "30 minutes.",
    ),
    _faq(
        "refund",
        "退款|退货|退钱|退换",
        r"refunds?|return(?:s|ing)?|money\s+back",
        "退款说明：签收后 7 天内可申请无理由退货，在“我的订单”中选择“申请退款”。"
        "审核通过后，款项在 3-5 个工作日内原路退回。",
        'Refunds: you can return an item within 7 days of delivery. Open "My orders" and '
        'choose "Request a refund"; once approved, the money is back on your original payment '
        "method within 3-5 business days.",
    ),
    _faq(
        "shipping",
        "发货|快递|物流|配送|运费|包裹|到货",
        r"ship(?:ping|ped)?|deliver(?:y|ed)?|parcel|package|track(?:ing)?|courier",
        "配送说明：订单在 24 小时内发货，一般 2-4 天送达；满 99 元包邮。"
        "发货后可在“我的订单”中查看物流信息。",
        "Shipping: orders leave our warehouse within 24 hours and usually arrive in 2-4 days; "
        'shipping is free over ¥99. Once shipped, you can track the parcel in "My orders".',
    ),
    _faq(
        "opening_hours",
        "营业时间|几点|上班时间|工作时间|营业",
        r"hours|open(?:ing)?\s+(?:hours|times?|today)|when\s+(?:are|do)\s+you\s+(?:open|close)",
        # Written from BUSINESS_HOURS: see FaqResponder.hours_answer.
        "营业时间：人工客服 24 小时在线；智能客服 24 小时为您服务。",
        "Opening hours: our human agents are available around the clock, and so is this assistant.",
    ),
    _faq(
        "greeting",
        "你好|您好|嗨|在吗|哈喽",
        r"hi|hello|hey|good\s+(?:morning|afternoon|evening)",
        "您好！我是智能客服，可以回答营业时间、退款、配送、重置密码等问题。请问有什么可以帮您？",
        "Hello! I'm the virtual assistant. I can help with opening hours, refunds, shipping "
        "and password resets. How can I help you?",
    ),
)

FALLBACK_ZH: Final = (
    "抱歉，我没有理解您的问题。您可以换个说法，或者输入“转人工”（或 human）联系人工客服。"
)
FALLBACK_EN: Final = (
    'Sorry, I didn\'t quite understand. You can rephrase your question, or type "human" '
    "(or 转人工) to talk to a person."
)
HANDOFF_ZH: Final = "好的，正在为您转接人工客服，请稍候。"
HANDOFF_EN: Final = "Sure, I'm connecting you with a human agent. Please wait a moment."


def _is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


class FaqResponder:
    """Answers from :data:`FAQS` in the customer's language (Chinese when the
    message contains Chinese characters), otherwise a fallback that says how to
    reach a human. The chat handler escalates on :func:`wants_human` itself; if
    it asks anyway, the bot acknowledges the handoff. The answer about opening hours is
    written from ``BUSINESS_HOURS`` (``hours``; None: always open) at ``clock()``'s time."""

    def __init__(
        self,
        hours: BusinessHours | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hours = hours
        self.clock = clock

    def answer(self, text: str) -> str:
        chinese = _is_chinese(text)
        if wants_human(text):
            return HANDOFF_ZH if chinese else HANDOFF_EN
        for faq in FAQS:
            if faq.pattern.search(text):
                if faq.topic == "opening_hours" and self.hours is not None:
                    return self.hours_answer(self.hours, chinese)
                return faq.zh if chinese else faq.en
        return FALLBACK_ZH if chinese else FALLBACK_EN

    def hours_answer(self, hours: BusinessHours, chinese: bool) -> str:
        now = self.clock()
        weekly = hours.describe(chinese)
        if hours.is_open(now):
            state = "现在人工客服在线。" if chinese else "Our agents are available now."
        else:
            when = opening_text(hours, hours.next_opening(now), chinese)
            state = (
                f"现在是非工作时间，下次开始服务：{when}。"
                if chinese
                else f"We are closed now; we open again on {when}."
            )
        if chinese:
            return f"营业时间：人工客服 {weekly}。{state}智能客服 24 小时为您服务。"
        return (
            f"Opening hours: our human agents work {weekly}. {state} "
            "This assistant is here around the clock."
        )

    async def reply(
        self, session: Session, history: list[ChatMessage], text: str
    ) -> AsyncIterator[str]:
        yield self.answer(text)
