"""The one place that reads the environment.

Every variable has a working default so that a fresh clone runs as it is. The
values are read once, on first use of :func:`get_settings`; tests that need
other values build their own ``Settings(...)`` and pass it down, or clear the
cache with ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from infrastructure.events import NAME_PATTERN, is_valid_name
from infrastructure.hours.model import BusinessHours
from infrastructure.redis_url import CLUSTER_SCHEME, RedisTopology, parse_redis_url
from infrastructure.webhooks.models import WebhookConfig, check_unique_ids

#: Shipped so that development works out of the box; the services warn loudly
#: and ``/readyz`` says so while it is in use.
DEVELOPMENT_AUTH_SECRET = "dev-insecure-secret-change-me-0123456789abcdef"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    # --- Redis and the SSE bus (names from the spec) ---
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    USE_REDIS_SSE: bool = True
    REDIS_SSE_CHANNEL_PREFIX: str = "sse:"
    SSE_HEARTBEAT_SECONDS: float = Field(default=30.0, gt=0)
    #: Per listener: a listener this far behind is disconnected (it resumes from history).
    SSE_QUEUE_MAXSIZE: int = Field(default=1000, ge=1)
    #: Per channel: how many events Redis keeps for ``Last-Event-ID`` resume (``XADD MAXLEN ~``).
    SSE_HISTORY_LENGTH: int = Field(default=1000, ge=1)
    #: A channel's history (and its epoch) expires this long after its last event.
    SSE_HISTORY_TTL_SECONDS: int = Field(default=86_400, ge=1)
    #: Events published while Redis is unreachable wait here, in order, for Redis to return.
    SSE_OUTBOX_MAXSIZE: int = Field(default=10_000, ge=1)
    #: The ``retry:`` hint (milliseconds) sent to browsers when a stream is closed on purpose.
    SSE_RETRY_MS: int = Field(default=1000, ge=0)
    #: Write event chunks straight to uvicorn's transport when it offers one
    #: (``infrastructure/web/direct_write.py``, feature-detected); ``false``: always
    #: through the ASGI ``send``.
    SSE_DIRECT_WRITE: bool = True
    #: Reconnect backoff of the Redis subscriber connection.
    REDIS_RECONNECT_MIN_SECONDS: float = Field(default=0.05, gt=0)
    REDIS_RECONNECT_MAX_SECONDS: float = Field(default=2.0, gt=0)
    REDIS_POOL_SIZE: int = Field(default=32, ge=1)
    REDIS_SOCKET_TIMEOUT_SECONDS: float = Field(default=2.0, gt=0)
    #: A publish is acknowledged once this many replicas have it (``WAIT`` after the
    #: publish script); until then it waits in the outbox. Unset: with Sentinel, 1 when
    #: the primary has a replica (per ``ROLE``), else 0; with one server, 0.
    REDIS_MIN_REPLICAS_ACK: int | None = Field(default=None, ge=0)
    #: How long ``WAIT`` waits for those replicas (at most half
    #: ``REDIS_SOCKET_TIMEOUT_SECONDS``: it holds the bus's connection meanwhile).
    REDIS_REPLICA_ACK_TIMEOUT_MS: int = Field(default=500, ge=1)
    #: How often the bus checks where the primary is (Sentinel: the sentinels' answer and
    #: ``ROLE`` on its own connection) and that its subscription still delivers (a probe
    #: on its control channel).
    REDIS_TOPOLOGY_CHECK_SECONDS: float = Field(default=1.0, gt=0)
    #: A probe not back after this long: delivery has stalled (``/readyz`` says not
    #: ready, and the bus connects again).
    REDIS_DELIVERY_STALL_SECONDS: float = Field(default=10.0, gt=0)

    # --- Sessions ---
    SESSION_TTL_SECONDS: int = Field(default=7 * 86_400, ge=1)
    MESSAGE_MAX_CHARS: int = Field(default=4000, ge=1)
    #: Any request body larger than this is a 413.
    MAX_BODY_BYTES: int = Field(default=64 * 1024, ge=1)

    # --- Attachments (infrastructure/attachments) ---
    #: Images (PNG, JPEG, GIF, WebP) and PDFs sent in a chat, either way: the largest accepted.
    ATTACHMENT_MAX_BYTES: int = Field(default=10 * 1024 * 1024, ge=1)
    #: Where they are kept: a folder every replica of both services shares (the default,
    #: like the record's SQLite file, under ``.run/``).
    ATTACHMENTS_DIR: Path = Path(".run/attachments")

    # --- The desk: presence, assignment, the queue (infrastructure/desk) ---
    #: ``auto``: a waiting chat goes to the online agent with the fewest chats under
    #: ``AGENT_MAX_CHATS``; ``manual``: agents pick from the queue (takeover works in both).
    ASSIGNMENT_MODE: Literal["auto", "manual"] = "auto"
    AGENT_MAX_CHATS: int = Field(default=3, ge=1, le=100)
    #: An agent with no live stream (or who said offline) this long gets its chats returned
    #: to the front of the queue.
    AGENT_OFFLINE_GRACE_SECONDS: float = Field(default=60.0, ge=0)
    #: A waiting customer with no open stream this long leaves the queue (``abandoned``).
    CUSTOMER_ABANDON_SECONDS: float = Field(default=120.0, ge=0)
    #: An agent chat with no message this long closes itself, with a notice.
    SESSION_IDLE_CLOSE_SECONDS: float = Field(default=1800.0, gt=0)
    #: How often each replica refreshes its streams' presence and runs the sweep.
    DESK_TICK_SECONDS: float = Field(default=5.0, gt=0)
    #: A replica's presence entries expire this long after its last refresh (a crashed
    #: replica's agents go offline by themselves); keep it above ``DESK_TICK_SECONDS``.
    PRESENCE_TTL_SECONDS: float = Field(default=15.0, gt=0)

    # --- Service identity and HTTP ---
    SERVICE_NAME: str = "cs-realtime"
    CORS_ORIGINS: list[str] = Field(default_factory=list)
    SHUTDOWN_GRACE_SECONDS: float = Field(default=5.0, gt=0)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Allocations between collections of the garbage collector's youngest generation
    #: (Python's default: 700). Each open stream keeps objects alive for hours; fewer
    #: collections cost less CPU when thousands open at once. 0 keeps Python's default.
    GC_GEN0_THRESHOLD: int = Field(default=200_000, ge=0)

    # --- Auth ---
    AUTH_SECRET: str = DEVELOPMENT_AUTH_SECRET
    CUSTOMER_TOKEN_TTL_SECONDS: int = Field(default=24 * 3600, ge=1)
    AGENT_TOKEN_TTL_SECONDS: int = Field(default=12 * 3600, ge=1)
    SERVICE_TOKEN_TTL_SECONDS: int = Field(default=3600, ge=1)

    # --- The bot ---
    #: ``faq`` (built in, needs nothing) or ``openai`` (an OpenAI-compatible endpoint).
    BOT_RESPONDER: Literal["faq", "openai"] = "faq"
    OPENAI_BASE_URL: str = "http://127.0.0.1:11434/v1"
    OPENAI_API_KEY: str = ""
    OPENAI_MODEL: str = "gpt-4o-mini"

    # --- Security limits and agent accounts (issue 6; see infrastructure/auth) ---
    #: Agent accounts: JSON object ``{"agent_id": "<argon2 hash>"}``; make a hash with
    #: ``python -m infrastructure.auth.passwords``. Empty while the development secret is in
    #: use means one development account (see ``infrastructure.auth.passwords``).
    AGENTS: dict[str, str] = Field(default_factory=dict)
    #: Agents with the ``supervisor`` role (the live view of the team, whisper, forced
    #: takeover): their ids, comma-separated (``SUPERVISORS=lead,ana``) or a JSON list. Read at
    #: sign-in into the token, and checked again on every supervisor request.
    SUPERVISORS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: ``Secure`` flag of the token cookies the web pages' streams use: true behind HTTPS.
    AUTH_COOKIE_SECURE: bool = False
    MAX_STREAMS_PER_TOKEN: int = Field(default=5, ge=1)
    MAX_STREAMS_TOTAL: int = Field(default=10_000, ge=1)
    #: Per token, per process, on message endpoints; bursts of up to ``RATE_LIMIT_BURST``.
    RATE_LIMIT_PER_MINUTE: int = Field(default=60, ge=1)
    RATE_LIMIT_BURST: int = Field(default=20, ge=1)
    #: 转人工 (``POST /api/manual/escalate``, or a message asking for a human that the message
    #: limit refused): its own bucket per token, so the message limit never blocks it.
    ESCALATION_RATE_LIMIT_PER_MINUTE: int = Field(default=30, ge=1)
    ESCALATION_RATE_LIMIT_BURST: int = Field(default=10, ge=1)
    #: Typing signals (``POST /api/sessions/{name}/typing``): a page sends one per 2 s.
    TYPING_RATE_LIMIT_PER_MINUTE: int = Field(default=60, ge=1)
    TYPING_RATE_LIMIT_BURST: int = Field(default=5, ge=1)
    MAX_JSON_DEPTH: int = Field(default=32, ge=1)

    # --- The record (issue 21; see infrastructure/record) ---
    #: The SQL database of the record: ``postgresql+asyncpg://user:pw@host/db`` in
    #: production, ``sqlite+aiosqlite:///path`` embedded (the default: a file under ``.run/``).
    DATABASE_URL: str = "sqlite+aiosqlite:///.run/record.sqlite3"
    #: ``embedded``: the workbench service runs the archiver (one consumer per replica);
    #: ``off``: it does not (run ``python -m infrastructure.record.archiver`` instead).
    RECORD_ARCHIVER: Literal["embedded", "off"] = "embedded"
    #: Entries the record stream keeps (``XADD MAXLEN ~``): the archiver's buffer while the
    #: database is down. At about 300 bytes an entry, a million is some 300 MB of Redis.
    RECORD_STREAM_MAXLEN: int = Field(default=1_000_000, ge=1000)
    #: Entries the archiver reads and commits in one transaction.
    RECORD_BATCH_SIZE: int = Field(default=500, ge=1)
    #: After a batch smaller than ``RECORD_BATCH_SIZE``, the archiver lets entries gather
    #: this long before it reads again: fewer, larger transactions (its CPU goes with the
    #: number of batches), at the price of the record lagging Redis by about this much.
    RECORD_BATCH_INTERVAL_SECONDS: float = Field(default=0.5, ge=0)
    #: A pending entry idle this long is claimed again (its consumer is taken for dead).
    RECORD_CLAIM_IDLE_MS: int = Field(default=30_000, ge=1)
    #: ``/readyz`` warns when the archiver is this many entries behind.
    RECORD_BACKLOG_WARNING: int = Field(default=10_000, ge=1)
    #: Conversations idle longer than this many days are purged from the record
    #: (``0``: keep forever).
    RECORD_RETENTION_DAYS: int = Field(default=0, ge=0)
    #: How often the retention purge runs.
    RECORD_PURGE_INTERVAL_SECONDS: float = Field(default=3600.0, gt=0)

    # --- Outgoing webhooks (infrastructure/webhooks) ---
    #: JSON list of ``{"url", "secret", "events": [...], "id"?}``; event types among
    #: escalated, assigned, transferred, closed, rated, message. Needs ``USE_REDIS_SSE``.
    WEBHOOKS: list[WebhookConfig] = Field(default_factory=list)
    WEBHOOK_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    #: The first retry's delay, doubled at each failure up to the maximum.
    WEBHOOK_BACKOFF_MIN_SECONDS: float = Field(default=5.0, gt=0)
    WEBHOOK_BACKOFF_MAX_SECONDS: float = Field(default=3600.0, gt=0)
    #: A delivery failing this long after its event is given up.
    WEBHOOK_MAX_AGE_SECONDS: float = Field(default=86_400.0, gt=0)
    #: A delivery pending this long in a consumer that stopped refreshing it (a dead
    #: replica) is taken over by another.
    WEBHOOK_CLAIM_IDLE_SECONDS: float = Field(default=60.0, gt=0)

    # --- Business hours (infrastructure/hours) ---
    #: ``{"timezone": "Asia/Shanghai", "weekly": {"mon": [["09:00", "18:00"]], ...},
    #: "holidays": ["2026-12-25"]}``; unset: always open.
    BUSINESS_HOURS: BusinessHours | None = None

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url_is_usable(cls, url: str) -> str:
        # At start, naming the problem (RedisUrlError is a ValueError: pydantic reports
        # it against REDIS_URL).
        parse_redis_url(url)
        return url

    @field_validator("SUPERVISORS", mode="before")
    @classmethod
    def _supervisor_ids(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("SUPERVISORS")
    @classmethod
    def _supervisors_are_names(cls, ids: list[str]) -> list[str]:
        for agent_id in ids:
            if not is_valid_name(agent_id):
                raise ValueError(f"invalid supervisor id {agent_id!r}: must match {NAME_PATTERN}")
        return ids

    @property
    def redis_topology(self) -> RedisTopology:
        """``REDIS_URL``, parsed (one server, Sentinel, or a Redis Cluster)."""
        return parse_redis_url(self.REDIS_URL)

    @property
    def redis_clustered(self) -> bool:
        """``REDIS_URL`` names a Redis Cluster (keys are laid out by hash tag)."""
        return self.REDIS_URL.split("://", 1)[0].lower() == CLUSTER_SCHEME

    def area_prefix(self, area: str) -> str:
        """The key prefix of a feature's Redis keys: ``sse:<area>:``; on a Redis Cluster
        ``sse:{<area>}:<area>:``, one hash tag, so one slot, for keys its scripts and
        transactions use together (the desk's is ``sessions.record_log.store_prefix``)."""
        prefix = self.REDIS_SSE_CHANNEL_PREFIX
        return f"{prefix}{{{area}}}:{area}:" if self.redis_clustered else f"{prefix}{area}:"

    @model_validator(mode="after")
    def _cluster_prefix_has_no_tag(self) -> Settings:
        # A brace in the prefix would be the hash tag of every key: one slot for all.
        prefix = self.REDIS_SSE_CHANNEL_PREFIX
        if self.redis_clustered and ("{" in prefix or "}" in prefix):
            raise ValueError(
                f"REDIS_SSE_CHANNEL_PREFIX {self.REDIS_SSE_CHANNEL_PREFIX!r} has a brace: on a "
                "Redis Cluster that would put every key in one slot (the bus tags its keys "
                "by channel, the desk by {desk})"
            )
        return self

    @model_validator(mode="after")
    def _presence_outlives_a_tick(self) -> Settings:
        # Entries refreshed every tick must live longer than a tick, or every agent would
        # flicker offline between two refreshes.
        if self.PRESENCE_TTL_SECONDS <= self.DESK_TICK_SECONDS:
            raise ValueError(
                f"PRESENCE_TTL_SECONDS ({self.PRESENCE_TTL_SECONDS}) must be greater than "
                f"DESK_TICK_SECONDS ({self.DESK_TICK_SECONDS}); three ticks or more is safe"
            )
        return self

    @model_validator(mode="after")
    def _webhooks_are_deliverable(self) -> Settings:
        check_unique_ids(self.WEBHOOKS)
        if self.WEBHOOKS and not self.USE_REDIS_SSE:
            raise ValueError(
                "WEBHOOKS needs USE_REDIS_SSE=true: deliveries wait in a queue in Redis "
                "(memory mode has no durable queue)"
            )
        if self.WEBHOOK_CLAIM_IDLE_SECONDS <= 2 * self.WEBHOOK_TIMEOUT_SECONDS:
            raise ValueError(
                f"WEBHOOK_CLAIM_IDLE_SECONDS ({self.WEBHOOK_CLAIM_IDLE_SECONDS}) must be more "
                f"than twice WEBHOOK_TIMEOUT_SECONDS ({self.WEBHOOK_TIMEOUT_SECONDS}), or a slow "
                "delivery would be taken over while it is on its way"
            )
        return self

    @property
    def uses_development_secret(self) -> bool:
        return self.AUTH_SECRET == DEVELOPMENT_AUTH_SECRET


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def read_env_file(path: Path) -> dict[str, str]:
    """The variables ``path`` (a ``.env`` file) sets, parsed as :class:`Settings` parses it
    (python-dotenv: quotes removed, ``${VAR}`` expanded); ``{}`` when there is no such file."""
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}
