"""What ``WEBHOOKS`` configures: one entry per receiver, checked when the settings load.

Only pydantic here: :mod:`infrastructure.config` imports it, so it imports nothing of ours.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The event types a hook may ask for. ``transferred`` is accepted now and produced by the
#: transfer feature (issue 23, item 1) when it lands.
WEBHOOK_EVENTS: Final = ("escalated", "assigned", "transferred", "closed", "rated", "message")
WebhookEvent = Literal["escalated", "assigned", "transferred", "closed", "rated", "message"]


class WebhookConfig(BaseModel):
    """``{"url": ..., "secret": ..., "events": [...], "id": optional}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    #: The HMAC key both sides share (``X-CS-Signature``); at least 16 characters.
    secret: str = Field(min_length=16)
    events: tuple[str, ...] = Field(min_length=1)
    #: A stable name for the delivery log and the queue; default: derived from the URL, so
    #: reordering the list (or rotating the secret) keeps pending deliveries with their hook.
    id: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,64}$")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url {url!r} is not an http(s) URL with a host")
        return url

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [e for e in events if e not in WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(
                f"unknown webhook event type(s) {', '.join(map(repr, unknown))}: "
                f"use {', '.join(WEBHOOK_EVENTS)}"
            )
        return tuple(dict.fromkeys(events))

    @property
    def hook_id(self) -> str:
        return self.id or "h-" + hashlib.sha256(self.url.encode()).hexdigest()[:12]

    def wants(self, event: str) -> bool:
        return event in self.events


def check_unique_ids(hooks: list[WebhookConfig]) -> None:
    seen: dict[str, str] = {}
    for hook in hooks:
        if hook.hook_id in seen:
            raise ValueError(
                f"WEBHOOKS: two hooks share the id {hook.hook_id!r} ({seen[hook.hook_id]} and "
                f'{hook.url}); give each an "id"'
            )
        seen[hook.hook_id] = hook.url
