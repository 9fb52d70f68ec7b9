"""Rate limits: a token bucket per token, in memory or in Redis, and the 429 it answers.

Two buckets per token: messages (``RATE_LIMIT_*``), and a separate, more generous one for
转人工 (``ESCALATION_RATE_LIMIT_*``), so that a customer who has used up the message bucket
can still reach a human: ``POST /api/manual/escalate`` charges only the escalation bucket, and
a customer message asking for a human that the message bucket refuses is charged to the
escalation bucket instead (see :func:`enforce_rate_limit`).

Every 429 carries ``Retry-After`` (whole seconds, at least 1) and says the same in words.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final, Protocol

from fastapi import Depends, HTTPException, Request, status
from redis.asyncio import Redis
from redis.exceptions import RedisError

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
    each replica counts only what it sees. :class:`RedisRateLimiter` is the shared variant
    behind the same interface.
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


# The same bucket in Redis, atomically. Time comes from Redis (TIME) so that replicas with
# skewed clocks agree; scripts are replicated by effect, so TIME is allowed in them.
# Returns {allowed (0/1), retry_after in ms}.
TOKEN_BUCKET_LUA: Final = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])          -- tokens per millisecond
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1])
local ts = tonumber(bucket[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry_ms = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
-- A bucket untouched long enough to be full again is the same as no bucket.
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return {allowed, retry_ms}
"""


class RedisRateLimiter:
    """:class:`MemoryRateLimiter`'s bucket in Redis, shared by every replica.

    While Redis is unreachable it falls back to a per-process bucket (the limit then is per
    replica again) rather than refusing or waving through every message. A message must not
    wait for Redis's reconnect attempts (seconds, with redis-py's retries), so each call is
    cut off after ``timeout_seconds``, and after a failure Redis is left alone for
    ``cooldown_seconds`` instead of every request paying that timeout again."""

    def __init__(
        self,
        redis: Redis,
        per_minute: float,
        burst: int,
        *,
        key_prefix: str = "ratelimit:",
        fallback: RateLimiter | None = None,
        timeout_seconds: float = 0.25,
        cooldown_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self._redis = redis
        self.rate_per_ms = per_minute / 60_000.0
        self.capacity = burst
        self.key_prefix = key_prefix
        self.fallback: RateLimiter = fallback or MemoryRateLimiter(per_minute, burst)
        self.timeout_seconds = timeout_seconds
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._redis_down_until = float("-inf")
        self._script = redis.register_script(TOKEN_BUCKET_LUA)

    @property
    def using_fallback(self) -> bool:
        return self._clock() < self._redis_down_until

    async def hit(self, key: str, cost: float = 1.0) -> RateDecision:
        if self.using_fallback:
            return await self.fallback.hit(key, cost)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await self._script(
                    keys=[f"{self.key_prefix}{key}"],
                    args=[self.capacity, repr(self.rate_per_ms), repr(cost)],
                )
        except (RedisError, OSError, TimeoutError):
            logger.warning(
                "rate limiter: Redis unavailable, per-process buckets for %.1f s",
                self.cooldown_seconds,
            )
            self._redis_down_until = self._clock() + self.cooldown_seconds
            return await self.fallback.hit(key, cost)
        allowed, retry_ms = int(result[0]), int(result[1])
        if allowed:
            return RateDecision(True)
        return RateDecision(False, retry_ms / 1000.0)


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
    """The process's message limiter, kept on ``app.state.rate_limiter``; in memory unless an
    app factory put a :class:`RedisRateLimiter` there."""
    limiter: RateLimiter = state_value(
        request.app.state,
        "rate_limiter",
        lambda: MemoryRateLimiter(settings.RATE_LIMIT_PER_MINUTE, settings.RATE_LIMIT_BURST),
    )
    return limiter


async def get_escalation_limiter(request: Request, settings: SettingsDep) -> RateLimiter:
    """The process's 转人工 limiter, on ``app.state.escalation_rate_limiter``: its own buckets
    (a :class:`RedisRateLimiter` put there needs its own ``key_prefix``)."""
    limiter: RateLimiter = state_value(
        request.app.state,
        "escalation_rate_limiter",
        lambda: MemoryRateLimiter(
            settings.ESCALATION_RATE_LIMIT_PER_MINUTE, settings.ESCALATION_RATE_LIMIT_BURST
        ),
    )
    return limiter


MessageRateLimiter = Annotated[RateLimiter, Depends(get_rate_limiter)]
EscalationRateLimiter = Annotated[RateLimiter, Depends(get_escalation_limiter)]


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
