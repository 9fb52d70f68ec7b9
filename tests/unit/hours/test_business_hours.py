"""Business hours without I/O: the rules on a clock the test sets, the setting's errors, the
FAQ's answer, 转人工 out of hours and the notice at opening (memory mode, in process)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from infrastructure.bootstrap.sse import SseBus
from infrastructure.bus.event import Event
from infrastructure.config import Settings
from infrastructure.events import Target
from infrastructure.hours.inbox import LeftMessage, MemoryLeftMessages
from infrastructure.hours.model import BusinessHours
from infrastructure.hours.service import LEFT_MESSAGES, announce_opening
from products.ai_chatbot.app import create_app
from products.ai_chatbot.responders.faq import FaqResponder
from tests.support.auth import make_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKWEEK: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "weekly": {
        d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
    },
    "holidays": ["2026-12-25"],
}


def at(text: str) -> datetime:
    """A local time in Shanghai: '2026-12-21 10:00' (a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture
def hours() -> BusinessHours:
    return BusinessHours.model_validate(WORKWEEK)


@pytest.mark.parametrize(
    ("now", "is_open", "opens"),
    [
        ("2026-12-21 10:00", True, "2026-12-21 10:00"),  # open: it "opens" now
        ("2026-12-21 08:59", False, "2026-12-21 09:00"),
        ("2026-12-21 12:00", False, "2026-12-21 13:00"),  # lunch: the end is exclusive
        ("2026-12-21 17:59", True, "2026-12-21 17:59"),
        ("2026-12-21 18:00", False, "2026-12-22 09:00"),
        ("2026-12-24 19:00", False, "2026-12-28 09:00"),  # Thu night: Fri is a holiday
        ("2026-12-25 10:00", False, "2026-12-28 09:00"),  # the holiday itself
        ("2026-12-26 10:00", False, "2026-12-28 09:00"),  # Saturday
    ],
)
def test_open_and_next_opening(hours: BusinessHours, now: str, is_open: bool, opens: str) -> None:
    assert hours.is_open(at(now)) is is_open
    assert hours.next_opening(at(now)) == at(opens)


def test_the_time_zone_of_the_hours_counts_not_the_callers(hours: BusinessHours) -> None:
    # 01:30 UTC on Monday is 09:30 in Shanghai: open.
    assert hours.is_open(datetime(2026, 12, 21, 1, 30, tzinfo=UTC))
    # 11:00 UTC on Monday is 19:00 in Shanghai: closed until Tuesday 09:00 there.
    assert hours.next_opening(datetime(2026, 12, 21, 11, 0, tzinfo=UTC)) == at("2026-12-22 09:00")


def test_a_daylight_saving_change_is_followed() -> None:
    paris = BusinessHours(timezone="Europe/Paris", weekly={"mon": [("09:00", "17:00")]})
    # Summer time ends on Sunday 2026-10-25: Monday's 09:00 is 08:00 UTC, a week before 07:00.
    assert paris.next_opening(datetime(2026, 10, 24, 12, tzinfo=UTC)) == datetime(
        2026, 10, 26, 8, tzinfo=UTC
    )
    assert paris.next_opening(datetime(2026, 10, 17, 12, tzinfo=UTC)) == datetime(
        2026, 10, 19, 7, tzinfo=UTC
    )


def test_never_open_has_no_next_opening() -> None:
    assert BusinessHours(timezone="UTC").next_opening(datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_unset_means_always_open() -> None:
    assert Settings(_env_file=None).BUSINESS_HOURS is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"timezone": "Asia/Shangai"}, "unknown time zone 'Asia/Shangai'"),
        ({"weekly": {"mon": [["18:00", "09:00"]]}}, "18:00-09:00 does not end after it starts"),
        ({"weekly": {"mon": [["09:00", "25:00"]]}}, "'25:00' is not a time of day"),
        ({"weekly": {"monday": [["09:00", "18:00"]]}}, "monday"),
        ({"holidays": ["2026-13-01"]}, "holidays"),
        ({"opening": "always"}, "opening"),
    ],
)
def test_a_bad_setting_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], named: str
) -> None:
    monkeypatch.setenv("BUSINESS_HOURS", json.dumps({**WORKWEEK, **change}))
    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None)
    assert named in str(error.value)
    assert "BUSINESS_HOURS" in str(error.value)


def test_the_faq_answers_from_the_setting(hours: BusinessHours) -> None:
    closed = FaqResponder(hours, clock=lambda: at("2026-12-26 10:00"))
    zh = closed.answer("你们的营业时间是几点？")
    assert "周一-周五 09:00-12:00, 13:00-18:00" in zh
    assert "2026-12-28 周一 09:00" in zh
    en = closed.answer("what are your opening hours?")
    assert "Mon-Fri 09:00-12:00, 13:00-18:00 (Asia/Shanghai)" in en
    assert "we open again on Mon 28 Dec 2026, 09:00" in en
    opened = FaqResponder(hours, clock=lambda: at("2026-12-21 10:00"))
    assert "available now" in opened.answer("opening hours?")
    assert "around the clock" in FaqResponder().answer("opening hours?")


# --- 转人工 out of hours, through the chatbot (memory mode) ---


def closed_now() -> dict[str, Any]:
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {"timezone": "UTC", "weekly": {days[day.weekday()]: [["09:00", "18:00"]]}}


@pytest.fixture
async def chatbot() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(USE_REDIS_SSE=False, BUSINESS_HOURS=closed_now()))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_out_of_hours_escalation_answers_and_a_message_is_left(
    chatbot: httpx.AsyncClient,
) -> None:
    created = (await chatbot.post("/api/sessions", json={})).json()
    name, auth = created["session_name"], {"Authorization": f"Bearer {created['token']}"}
    sent = await chatbot.post(
        f"/api/sessions/{name}/messages", json={"content": "转人工"}, headers=auth
    )
    assert sent.status_code == 201, sent.text
    assert (sent.json()["status"], sent.json()["escalated"]) == ("ai", False)
    by_button = await chatbot.post(
        "/api/manual/escalate", json={"session_name": name}, headers=auth
    )
    assert by_button.json()["status"] == "ai"
    transcript = (await chatbot.get(f"/api/sessions/{name}/messages", headers=auth)).json()
    assert "非工作时间" in transcript[1]["content"]
    assert "We open again on" in transcript[2]["content"]

    bad = await chatbot.post(
        f"/api/sessions/{name}/leave-message", json={"name": "Mei", "text": "hi"}, headers=auth
    )
    assert bad.status_code == 422
    assert "contact" in bad.text
    left = await chatbot.post(
        f"/api/sessions/{name}/leave-message",
        json={"name": "Mei", "contact": "mei@example.com", "text": "Parcel A-17?"},
        headers=auth,
    )
    assert left.status_code == 201, left.text
    assert left.json()["sender"] == "customer"
    assert "mei@example.com" in left.json()["content"]
    other = (await chatbot.post("/api/sessions", json={})).json()["session_name"]
    foreign = await chatbot.post(
        f"/api/sessions/{other}/leave-message",
        json={"name": "Mei", "contact": "x", "text": "y"},
        headers=auth,
    )
    assert foreign.status_code == 403


# --- the notice at opening ---


class RecordingBus(SseBus):
    """The real in-memory bus, remembering what it was asked to publish."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[tuple[Any, str, Mapping[str, Any]]] = []

    async def publish(
        self,
        target: str | Target,
        event_type: str,
        payload: Mapping[str, Any],
        source: str | None = None,
    ) -> Event:
        self.sent.append((target, event_type, payload))
        return await super().publish(target, event_type, payload, source)


async def test_agents_are_told_once_per_opening_window(hours: BusinessHours) -> None:
    bus = RecordingBus(Settings(_env_file=None, USE_REDIS_SSE=False))
    inbox = MemoryLeftMessages()
    monday = at("2026-12-21 09:00")

    assert not await announce_opening(bus, hours, inbox, monday, "t")  # nothing waiting
    await inbox.add(LeftMessage("s1", "Mei", "mei@example.com", "hi", 1))
    assert not await announce_opening(bus, hours, inbox, at("2026-12-20 22:00"), "t")  # closed
    assert await announce_opening(bus, hours, inbox, monday, "t")
    assert not await announce_opening(bus, hours, inbox, monday + timedelta(minutes=5), "t")
    # The next window (after lunch) tells again while the message waits; done, it stops.
    assert await announce_opening(bus, hours, inbox, at("2026-12-21 13:00"), "t")
    assert await inbox.done("s1")
    assert not await announce_opening(bus, hours, inbox, at("2026-12-22 09:00"), "t")
    assert not await announce_opening(bus, None, inbox, monday, "t")

    assert bus.stats.published[LEFT_MESSAGES] == 2
    notices = [(t, p) for t, kind, p in bus.sent if kind == LEFT_MESSAGES]
    assert [t for t, _ in notices] == [Target.broadcast()] * 2
    assert notices[0][1]["messages"][0]["contact"] == "mei@example.com"
