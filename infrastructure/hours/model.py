"""``BUSINESS_HOURS``: a time zone, weekly hours and holidays; pure rules on an injected time.

Only pydantic and the standard library here (:mod:`infrastructure.config` imports it).
Every rule takes ``now`` (an aware datetime): the callers own the clock, tests move it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: Final[tuple[Day, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAYS_ZH: Final = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_HHMM: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
#: How far ahead the next opening is looked for (a year of holidays and then some).
_HORIZON_DAYS: Final = 400


def _minutes(text: str) -> int:
    if not _HHMM.match(text):
        raise ValueError(f"{text!r} is not a time of day as HH:MM (00:00 to 24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class BusinessHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    #: Per day, its open windows as ``[["09:00", "12:00"], ["13:00", "18:00"]]``; a day not
    #: listed is closed. A window ends before midnight (``24:00`` at the latest).
    weekly: dict[Day, list[tuple[str, str]]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name: Asia/Shanghai)") from None
        return name

    @field_validator("weekly")
    @classmethod
    def _windows(cls, weekly: dict[Day, list[tuple[str, str]]]) -> dict[Day, list[tuple[str, str]]]:
        for day, windows in weekly.items():
            for start, end in windows:
                if _minutes(start) >= _minutes(end):
                    raise ValueError(
                        f"{day}: window {start}-{end} does not end after it starts (one past "
                        "midnight is two windows: until 24:00, and from 00:00 the next day)"
                    )
        return weekly

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _windows_of(self, day: date) -> list[tuple[int, int]]:
        if day in self.holidays:
            return []
        return sorted(
            (_minutes(s), _minutes(e)) for s, e in self.weekly.get(DAYS[day.weekday()], [])
        )

    def _at(self, day: date, minutes: int) -> datetime:
        return datetime.combine(day, time(0), self.zone) + timedelta(minutes=minutes)

    def current_window(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The open window ``now`` is in, as aware datetimes; None when closed."""
        local = now.astimezone(self.zone)
        for start, end in self._windows_of(local.date()):
            opens, closes = self._at(local.date(), start), self._at(local.date(), end)
            if opens <= local < closes:
                return opens, closes
        return None

    def is_open(self, now: datetime) -> bool:
        return self.current_window(now) is not None

    def next_opening(self, now: datetime) -> datetime | None:
        """When it opens next (``now`` itself when open); None when it never does."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.zone)
        for offset in range(_HORIZON_DAYS):
            day = local.date() + timedelta(days=offset)
            for start, _ in self._windows_of(day):
                opens = self._at(day, start)
                if opens > local:
                    return opens
        return None

    def describe(self, chinese: bool) -> str:
        """The weekly hours in a line: ``mon-fri 09:00-18:00; sat 10:00-16:00 (Asia/...)``."""
        groups: list[tuple[int, int, str]] = []
        for index, day in enumerate(DAYS):
            windows = self.weekly.get(day, [])
            text = ", ".join(f"{s}-{e}" for s, e in windows)
            if not text:
                continue
            if groups and groups[-1][2] == text and groups[-1][1] == index - 1:
                groups[-1] = (groups[-1][0], index, text)
            else:
                groups.append((index, index, text))
        names = DAYS_ZH if chinese else tuple(d.capitalize() for d in DAYS)
        parts = []
        for first, last, text in groups:
            days = names[first] if first == last else f"{names[first]}-{names[last]}"
            parts.append(f"{days} {text}")
        if not parts:
            return "暂无人工服务时间" if chinese else "no hours set"
        return ("；" if chinese else "; ").join(parts) + f" ({self.timezone})"
