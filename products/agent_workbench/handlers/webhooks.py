"""The delivery log of the outgoing webhooks, as agents (and operators) read it."""

from __future__ import annotations

from datetime import UTC, datetime

from infrastructure.config import Settings
from infrastructure.webhooks.queue import WebhookQueue
from products.agent_workbench.schemas import WebhookHookStatus, WebhookStatus


def _when(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


async def webhook_status(settings: Settings, queue: WebhookQueue | None) -> WebhookStatus:
    """Each hook's last status and counts, and the backlog (empty without hooks)."""
    if queue is None:
        return WebhookStatus(backlog=0, hooks=[])
    hooks = []
    for hook in settings.WEBHOOKS:
        log = await queue.log(hook.hook_id)
        failing = int(log.get("consecutive_failures") or 0)
        hooks.append(
            WebhookHookStatus(
                id=hook.hook_id,
                url=hook.url,
                events=list(hook.events),
                delivered=int(log.get("delivered") or 0),
                failures=int(log.get("failures") or 0),
                gave_up=int(log.get("gave_up") or 0),
                consecutive_failures=failing,
                healthy=failing == 0,
                last_status=log.get("last_status") or None,
                last_error=log.get("last_error") or None,
                last_attempt_at=_when(log.get("last_attempt_at")),
                last_success_at=_when(log.get("last_success_at")),
            )
        )
    return WebhookStatus(backlog=await queue.backlog(), hooks=hooks)
