"""Agent passwords: argon2id hashes, and the agent accounts from settings.

Agents are configured, not registered: ``AGENTS`` is a JSON object mapping each agent id to
the argon2 hash of its password, e.g. ::

    AGENTS='{"alice": "$argon2id$v=19$m=65536,t=3,p=4$..."}'

``python -m infrastructure.auth.passwords`` reads a password from stdin (without echo on a
terminal) and prints its hash.

Development account: while ``AUTH_SECRET`` is the built-in development secret *and*
``AGENTS`` is empty, one account exists so that a fresh clone can log in:
``DEV_AGENT_ID`` / ``DEV_AGENT_PASSWORD`` (``agent1`` / ``agent1-dev-password``). Setting a
real ``AUTH_SECRET`` (production) removes it; there is no default account in production.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Final

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infrastructure.auth.tokens import is_strict_name
from infrastructure.config import Settings
from infrastructure.events import NAME_PATTERN

DEV_AGENT_ID: Final = "agent1"
DEV_AGENT_PASSWORD: Final = "agent1-dev-password"
#: argon2 prehashes, so length costs little time, but nobody needs a longer one and a cap keeps
#: the login endpoint's worst case obvious.
MAX_PASSWORD_LENGTH: Final = 1024

# argon2-cffi's default profile (RFC 9106 "low memory": 64 MiB, t=3, p=4).
_HASHER: Final = PasswordHasher()

# Each verification holds ~64 MiB for tens of milliseconds; without a cap, a burst of logins
# on anyio's default 40 worker threads could take gigabytes. A RunVar: a limiter belongs to
# one event loop, and tests run many.
_VERIFY_CONCURRENCY: Final = 4
_limiter: Final[RunVar[anyio.CapacityLimiter]] = RunVar("password_verify_limiter")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; ``False`` for a malformed hash too.

    CPU- and memory-heavy: in async code use :func:`authenticate_agent`."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dev_agent_hash() -> str:
    return _HASHER.hash(DEV_AGENT_PASSWORD)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("not-a-password-of-any-agent")


def agent_accounts(settings: Settings) -> Mapping[str, str]:
    """agent id -> argon2 hash. Raises ``ValueError`` for a configuration that cannot work
    (an id outside the name pattern, a value that is not an argon2 hash), so that the service
    can refuse to start instead of failing logins one by one."""
    if not settings.AGENTS:
        if settings.uses_development_secret:
            return {DEV_AGENT_ID: _dev_agent_hash()}
        return {}
    for agent_id, password_hash in settings.AGENTS.items():
        if not is_strict_name(agent_id):
            raise ValueError(f"AGENTS: invalid agent id {agent_id!r}: must match {NAME_PATTERN}")
        if not password_hash.startswith("$argon2"):
            # The id is safe to name; the value might be a plain password pasted by mistake.
            raise ValueError(f"AGENTS: the value for {agent_id!r} is not an argon2 hash")
    return settings.AGENTS


def check_agent_password(settings: Settings, agent_id: str, password: str) -> bool:
    """Whether ``agent_id`` / ``password`` is a configured account (blocking)."""
    password_hash = agent_accounts(settings).get(agent_id)
    if password_hash is None:
        # Verify against a dummy hash anyway: an unknown id takes as long as a wrong password,
        # so response times do not tell which agent ids exist.
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(password_hash, password)


async def authenticate_agent(settings: Settings, agent_id: str, password: str) -> bool:
    """:func:`check_agent_password` off the event loop, a few at a time."""
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(_VERIFY_CONCURRENCY)
        _limiter.set(limiter)
    return await anyio.to_thread.run_sync(
        check_agent_password, settings, agent_id, password, limiter=limiter
    )


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the passwords differ")
        return first
    # Piped: the first line, without its line ending (and nothing else stripped: spaces
    # inside or around a password are part of it).
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the argon2 hash of a password read from stdin, for ``AGENTS``."""
    if argv:
        print("usage: python -m infrastructure.auth.passwords < password.txt", file=sys.stderr)
        return 2
    try:
        password = _read_password()
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"longer than {MAX_PASSWORD_LENGTH} characters")
        print(hash_password(password))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
