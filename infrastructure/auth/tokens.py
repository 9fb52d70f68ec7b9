"""Signed, short-lived access tokens (JWT, HS256 with ``AUTH_SECRET``).

A token carries a role and one subject, which together are its scope:

* ``customer`` -- ``sub`` is the session name: that session's events and messages only;
* ``agent`` -- ``sub`` is the agent id: the queue, any session's events, and acting as itself;
* ``service`` -- ``sub`` is the calling back-end's name: the publish API and the callback.

An agent's token may carry a ``scope`` claim (space-separated, as RFC 8693 has it):
``supervisor`` for the agents ``SUPERVISORS`` names (the team's live view, forced takeover).

Verification pins the algorithm (``HS256`` only), so a token whose header says ``alg: none``
or any other algorithm is rejected before its signature is even looked at; ``exp``, ``iat``,
``sub``, ``role`` and ``jti`` are required. Every failure is one exception, :class:`InvalidToken`,
whose message is safe to log: it never contains the token.

``python -m infrastructure.tokens ROLE SUBJECT [--ttl N]`` prints a token for trying the API
by hand (see :func:`main`).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import jwt

from infrastructure.config import Settings, get_settings
from infrastructure.events import NAME_PATTERN, is_valid_name

ALGORITHM: Final = "HS256"
#: RFC 7518 3.2: an HS256 key shorter than the hash output weakens the MAC.
MIN_SECRET_BYTES: Final = 32
#: Far above any token we issue (~300 bytes); a cheap guard before parsing anything.
MAX_TOKEN_LENGTH: Final = 4096
#: Replicas on different hosts disagree a little about the time; without slack a freshly
#: issued token could be "not yet valid" (``iat`` in the future) on a replica a second behind.
CLOCK_LEEWAY_SECONDS: Final = 10
REQUIRED_CLAIMS: Final = ("exp", "iat", "sub", "role", "jti")

# One configured instance instead of the module functions: a secret below the minimum length
# raises instead of warning on every request, so a misconfiguration is loud (a 500 and the
# startup check :func:`check_auth_secret`), never a silently weak signature.
_JWT: Final = jwt.PyJWT(options={"enforce_minimum_key_length": True})


def is_strict_name(name: str) -> bool:
    """``NAME_PATTERN``, matched against the whole string (no trailing newline)."""
    return is_valid_name(name)


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SERVICE = "service"


_ROLE_VALUES: Final = frozenset(r.value for r in Role)

#: The scope a supervisor's token carries (an agent token; see SUPERVISORS).
SUPERVISOR_SCOPE: Final = "supervisor"
KNOWN_SCOPES: Final = frozenset({SUPERVISOR_SCOPE})

#: The roles as plain names, for checks made on every request: on Python 3.11
#: ``Role.X`` takes the slow attribute path of ``EnumType`` (see events.SESSION_KIND).
CUSTOMER_ROLE: Final = Role.CUSTOMER
AGENT_ROLE: Final = Role.AGENT
SERVICE_ROLE: Final = Role.SERVICE


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    role: Role
    #: Session name (customer), agent id (agent) or service name (service).
    subject: str
    #: The token's ``jti``: what per-token limits count by.
    token_id: str
    #: Extra rights of an agent (``supervisor``); empty for most tokens.
    scopes: frozenset[str] = frozenset()


class InvalidToken(Exception):
    """The token is missing a claim, expired, forged, malformed or uses another algorithm.

    The message says which, but never contains the token or the secret."""


def check_auth_secret(settings: Settings) -> None:
    """For the services' startup: refuse a secret too short to sign with."""
    if len(settings.AUTH_SECRET.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"AUTH_SECRET must be at least {MIN_SECRET_BYTES} bytes long")


def token_ttl(settings: Settings, role: Role) -> int:
    return {
        Role.CUSTOMER: settings.CUSTOMER_TOKEN_TTL_SECONDS,
        Role.AGENT: settings.AGENT_TOKEN_TTL_SECONDS,
        Role.SERVICE: settings.SERVICE_TOKEN_TTL_SECONDS,
    }[role]


def issue_token(
    settings: Settings,
    role: Role | str,
    subject: str,
    ttl: int | None = None,
    scopes: Sequence[str] = (),
) -> str:
    """A signed token for ``subject`` in ``role``, valid for ``ttl`` seconds (default: the
    role's ``*_TOKEN_TTL_SECONDS``), with ``scopes`` (agents only).

    Raises ``ValueError`` for an unknown role, a subject outside the name pattern (a subject
    is a session name or an id, and it ends up compared with path parameters), ``ttl < 1``
    or a scope that is unknown or not an agent's.
    """
    role = Role(role)
    if scopes and role is not Role.AGENT:
        raise ValueError("only an agent's token carries scopes")
    if not set(scopes) <= KNOWN_SCOPES:
        raise ValueError(f"unknown scope: known are {', '.join(sorted(KNOWN_SCOPES))}")
    if not is_strict_name(subject):
        raise ValueError(f"invalid subject: must match {NAME_PATTERN}")
    lifetime = token_ttl(settings, role) if ttl is None else ttl
    if lifetime < 1:
        raise ValueError("ttl must be at least 1 second")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "role": str(role),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    if scopes:
        claims["scope"] = " ".join(sorted(set(scopes)))
    return _JWT.encode(claims, settings.AUTH_SECRET, algorithm=ALGORITHM)


class _VerifiedTokens:
    """Tokens already verified, until they expire: a stream's client and a publishing
    back-end present the same token again and again, and the HMAC check and JSON
    decoding showed in the publish path's profile. Each is kept with the secret it
    was verified under, so a new AUTH_SECRET verifies afresh. Bounded: past
    ``maxsize`` the oldest goes first (a token still in use is then verified once
    more; a plain dict and no reordering per hit, on every request's path)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._maxsize = maxsize
        self._entries: dict[str, tuple[str, Principal, float]] = {}

    def get(self, secret: str, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] != secret:
            return None
        if time.time() > entry[2] + CLOCK_LEEWAY_SECONDS:
            del self._entries[token]
            raise InvalidToken("token expired")
        return entry[1]

    def put(self, secret: str, token: str, principal: Principal, expires_at: float) -> None:
        self._entries[token] = (secret, principal, expires_at)
        if len(self._entries) > self._maxsize:
            del self._entries[next(iter(self._entries))]


_verified = _VerifiedTokens()


def verify_token(settings: Settings, token: str) -> Principal:
    """The principal a token proves, or :class:`InvalidToken`."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed token")
    cached = _verified.get(settings.AUTH_SECRET, token)
    if cached is not None:
        return cached
    try:
        claims = _JWT.decode(
            token,
            settings.AUTH_SECRET,
            # Pinned: the header's ``alg`` is attacker-controlled and is never trusted to choose.
            algorithms=[ALGORITHM],
            options={"require": list(REQUIRED_CLAIMS)},
            leeway=CLOCK_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except jwt.InvalidTokenError as exc:
        # ``from None``: the chained PyJWT error may quote token segments in tracebacks.
        raise InvalidToken(f"invalid token ({type(exc).__name__})") from None
    # Not caught: jwt.InvalidKeyError (a short AUTH_SECRET) is the server's fault, not the
    # caller's, and must not turn every request into a quiet 401.
    role, subject, token_id = claims.get("role"), claims.get("sub"), claims.get("jti")
    if not isinstance(role, str) or role not in _ROLE_VALUES:
        raise InvalidToken("invalid token (unknown role)")
    if not isinstance(subject, str) or not is_strict_name(subject):
        raise InvalidToken("invalid token (bad subject)")
    if not isinstance(token_id, str) or not token_id:
        raise InvalidToken("invalid token (bad jti)")
    scope = claims.get("scope", "")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else None
    if scopes is None or not scopes <= KNOWN_SCOPES or (scopes and role != Role.AGENT):
        raise InvalidToken("invalid token (bad scope)")
    principal = Principal(Role(role), subject, token_id, scopes)
    _verified.put(settings.AUTH_SECRET, token, principal, float(claims["exp"]))
    return principal


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infrastructure.tokens ROLE SUBJECT [--ttl N]``: print a token.

    It signs with the configured ``AUTH_SECRET`` (environment or ``.env``), so the token is
    accepted by services running with the same configuration."""
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.tokens",
        description="Print a signed access token for trying the API by hand.",
    )
    parser.add_argument("role", choices=[str(r) for r in Role])
    parser.add_argument("subject", help="session name (customer), agent id or service name")
    parser.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    parser.add_argument(
        "--scope", action="append", default=[], help="an agent's extra right (supervisor)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        token = issue_token(settings, args.role, args.subject, args.ttl, args.scope)
    except ValueError as exc:
        parser.error(str(exc))
    if settings.uses_development_secret:
        print("note: signed with the built-in development AUTH_SECRET", file=sys.stderr)
    print(token)
    return 0
