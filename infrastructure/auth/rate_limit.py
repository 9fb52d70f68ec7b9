"""Rate limits: a token bucket per token, in this process, and the 429 it answers.

Two buckets per token: messages (``RATE_LIMIT_*``), and a separate, more generous one for
转人工 (``ESCALATION_RATE_LIMIT_*``), so that a customer who has used up the message bucket
can still reach a human: ``POST /api/manual/escalate`` charges only the escalation bucket, and
a customer message asking for a human that the message bucket refuses is charged to the
escalation bucket instead (see :func:`enforce_rate_limit`).

Every 429 carries ``Retry-After`` (whole seconds, at least 1) and says the same in words.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status

from infrastructure.auth.dependencies import CurrentPrincipal, SettingsDep
from infrastructure.auth.limits import state_value
from infrastructure.auth.tokens import Principal

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    #: Seconds until the request would be allowed (0 when allowed).
    retry_after: float = 0.0


class RateLimiter(Protocol):
    async def hit(self, key: str, cost: float = 1.0) -> RateDecision: ...


class MemoryRateLimiter:
    """Token bucket per key, in this process: ``burst`` requests at once, refilled at
    ``per_minute``.

    NOTE: with N replicas behind a load balancer the effective limit is N times this, since
    each replica counts only what it sees (a bucket in Redis behind the same interface
    would be the shared variant; none is wired today).
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, time of last update). Ordered by last use so that, past max_keys,
        # the least recently used bucket goes first: it is the one most likely full again,
        # and forgetting a full bucket changes nothing.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def hit(self, key: str, cost: float = 1.0) -> RateDecision:
        return self.hit_sync(key, cost)

    def hit_sync(self, key: str, cost: float = 1.0) -> RateDecision:
        now = self._clock()
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - updated) * self.rate)
        if tokens >= cost:
            decision = RateDecision(True)
            tokens -= cost
        else:
            decision = RateDecision(False, (cost - tokens) / self.rate)
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return decision


def rate_limit_key(principal: Principal) -> str:
    # Per token: a new token (a new session, a new login) starts a new bucket; that is what
    # the issue asks for, and issuing tokens is itself an authenticated or cheap-to-limit step.
    return f"{principal.role}:{principal.token_id}"


def retry_after_seconds(decision: RateDecision) -> int:
    """``Retry-After`` for a refusal: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(decision.retry_after))


def too_many(what: str, decision: RateDecision) -> HTTPException:
    """The 429 for a refused ``decision``: ``Retry-After`` and the same wait in words."""
    seconds = retry_after_seconds(decision)
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many {what}: try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


async def enforce_rate_limit(
    limiter: RateLimiter,
    principal: Principal,
    what: str = "messages",
    *,
    overflow: RateLimiter | None = None,
) -> None:
    """Charge ``principal``'s bucket in ``limiter``; a 429 (:func:`too_many`) when it is empty.

    ``overflow``: a second limiter that may take the request when ``limiter`` refuses it (a
    message that asks for a human goes to the escalation bucket, so that 转人工 is never
    blocked by the message rate); its refusal is then the one reported."""
    decision = await limiter.hit(rate_limit_key(principal))
    if not decision.allowed and overflow is not None:
        what = "requests for a human"
        decision = await overflow.hit(rate_limit_key(principal))
    if not decision.allowed:
        raise too_many(what, decision)


async def get_rate_limiter(request: Request, settings: SettingsDep) -> RateLimiter:
    """The process's message limiter, kept on ``app.state.rate_limiter`` (an app factory may
    put another there first)."""
    return _own_limiter(
        request, "rate_limiter", settings.RATE_LIMIT_PER_MINUTE, settings.RATE_LIMIT_BURST
    )


async def get_escalation_limiter(request: Request, settings: SettingsDep) -> RateLimiter:
    """The process's 转人工 limiter, on ``app.state.escalation_rate_limiter``: its own
    buckets."""
    return _own_limiter(
        request,
        "escalation_rate_limiter",
        settings.ESCALATION_RATE_LIMIT_PER_MINUTE,
        settings.ESCALATION_RATE_LIMIT_BURST,
    )


async def get_typing_limiter(request: Request, settings: SettingsDep) -> RateLimiter:
    """The process's limiter of typing signals (``app.state.typing_rate_limiter``): a page
    sends one per 2 s at most; a client that floods is refused, not relayed."""
    return _own_limiter(
        request,
        "typing_rate_limiter",
        settings.TYPING_RATE_LIMIT_PER_MINUTE,
        settings.TYPING_RATE_LIMIT_BURST,
    )


def _own_limiter(request: Request, name: str, per_minute: int, burst: int) -> RateLimiter:
    limiter: RateLimiter = state_value(
        request.app.state, name, lambda: MemoryRateLimiter(per_minute, burst)
    )
    return limiter


MessageRateLimiter = Annotated[RateLimiter, Depends(get_rate_limiter)]
EscalationRateLimiter = Annotated[RateLimiter, Depends(get_escalation_limiter)]
TypingRateLimiter = Annotated[RateLimiter, Depends(get_typing_limiter)]


async def get_rate_limited_principal(
    principal: CurrentPrincipal, limiter: MessageRateLimiter
) -> Principal:
    await enforce_rate_limit(limiter, principal)
    return principal


async def get_escalation_limited_principal(
    principal: CurrentPrincipal, limiter: EscalationRateLimiter
) -> Principal:
    await enforce_rate_limit(limiter, principal, "requests for a human")
    return principal


#: For message endpoints: the Bearer caller, after charging its bucket (429 when empty).
#: Combine freely with ``SessionAccess`` etc.: FastAPI verifies the token once per request.
RateLimitedPrincipal = Annotated[Principal, Depends(get_rate_limited_principal)]
#: For 转人工: the Bearer caller, after charging its escalation bucket only.
EscalationLimitedPrincipal = Annotated[Principal, Depends(get_escalation_limited_principal)]
