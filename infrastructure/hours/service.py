"""Out of hours: what 转人工 answers, a message left meanwhile, the notice when hours begin.

Every function takes ``now`` (an aware datetime): the callers own the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from infrastructure.bootstrap.sse import SseBus
from infrastructure.events import Target
from infrastructure.sessions import ChatMessage, SenderRole, SessionStore
from infrastructure.sessions.notify import publish_message

from .inbox import LeftMessage, LeftMessages
from .model import DAYS_ZH, BusinessHours

#: On the session channel: the page shows the leave-a-message form.
OUT_OF_HOURS: Final = "out_of_hours"
#: On the broadcast channel: one customer left a message / the waiting ones at opening.
LEFT_MESSAGE: Final = "left_message"
LEFT_MESSAGES: Final = "left_messages"


def opening_text(hours: BusinessHours, opens: datetime | None, chinese: bool) -> str:
    if opens is None:
        return "暂无人工服务时间" if chinese else "no opening hours are set"
    local = opens.astimezone(hours.zone)
    if chinese:
        return f"{local:%Y-%m-%d} {DAYS_ZH[local.weekday()]} {local:%H:%M}（{hours.timezone}）"
    return f"{local:%a %d %b %Y, %H:%M} ({hours.timezone})"


def closed_answer(hours: BusinessHours, now: datetime, chinese: bool) -> str:
    when = opening_text(hours, hours.next_opening(now), chinese)
    if chinese:
        return (
            f"抱歉，现在是非工作时间，人工客服暂时无法接入。我们将于 {when} 开始服务。"
            "您可以留言（姓名、联系方式和问题），客服上班后会尽快联系您。"
        )
    return (
        f"Sorry, our agents are away right now. We open again on {when}. "
        "You can leave a message (your name, how to reach you, and your question) and an "
        "agent will get back to you when we open."
    )


async def tell_out_of_hours(
    bus: SseBus,
    store: SessionStore,
    session_name: str,
    hours: BusinessHours,
    now: datetime,
    chinese: bool,
    source: str,
) -> ChatMessage:
    """The bot's answer in the transcript, and ``out_of_hours`` for the page's form."""
    message = await store.append_message(
        ChatMessage(
            session_name=session_name,
            sender=SenderRole.BOT,
            content=closed_answer(hours, now, chinese),
        )
    )
    await publish_message(bus, message, source)
    opens = hours.next_opening(now)
    await bus.publish(
        Target.session(session_name),
        OUT_OF_HOURS,
        {
            "session_name": session_name,
            "next_opening": opens.isoformat() if opens else None,
            "timezone": hours.timezone,
            "leave_message": True,
        },
        source,
    )
    return message


def left_message_content(name: str, contact: str, text: str) -> str:
    return f"Message left for our agents · 留言\nName: {name}\nContact: {contact}\n\n{text}"


async def leave_message(
    bus: SseBus,
    store: SessionStore,
    inbox: LeftMessages,
    left: LeftMessage,
    source: str,
) -> ChatMessage:
    """In the transcript (a customer message), in the inbox, and told to agents online."""
    message = await store.append_message(
        ChatMessage(
            session_name=left.session_name,
            sender=SenderRole.CUSTOMER,
            content=left_message_content(left.name, left.contact, left.text),
        )
    )
    await publish_message(bus, message, source)
    await inbox.add(left)
    await bus.publish(Target.broadcast(), LEFT_MESSAGE, left.public(), source)
    return message


async def announce_opening(
    bus: SseBus, hours: BusinessHours | None, inbox: LeftMessages, now: datetime, source: str
) -> bool:
    """At the start of each open window (once, whichever replica sees it first), tell every
    agent the messages waiting. True when it did."""
    if hours is None:
        return False
    window = hours.current_window(now)
    if window is None:
        return False
    waiting = await inbox.pending()
    if not waiting or not await inbox.announce_once(window[0].isoformat()):
        return False
    await bus.publish(
        Target.broadcast(),
        LEFT_MESSAGES,
        {"count": len(waiting), "messages": [m.public() for m in waiting]},
        source,
    )
    return True
