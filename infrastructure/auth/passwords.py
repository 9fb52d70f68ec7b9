"""Agent passwords: argon2id hashes, and the agent accounts from settings.

Agents are configured, not registered: ``AGENTS`` is a JSON object mapping each agent id to
the argon2 hash of its password, e.g. ::

    AGENTS='{"alice": "$argon2id$v=19$m=65536,t=3,p=4$..."}'

Commands::

    python -m infrastructure.auth.passwords                 # a password on stdin -> its hash
    python -m infrastructure.auth.passwords add <id> [--password-stdin] [--force]
                                                  [--env-file .env]

``add`` writes the account into ``AGENTS`` in ``.env`` itself (quoted safely, see
:mod:`.agent_file`): on a terminal it asks for a password (empty: one is generated), otherwise
it generates one, unless ``--password-stdin`` (the first line of stdin); a generated password
is printed. An existing id is replaced only with ``--force``. The services read ``AGENTS`` at
start: restart them.

First run: ``make run`` (:func:`ensure_agent_account`) creates ``agent1`` with a random
password when no ``AGENTS`` is configured, and prints the password on every run while it still
matches.

Development account: while ``AUTH_SECRET`` is the built-in development secret *and*
``AGENTS`` is empty, one account exists so that a fresh clone can log in:
``DEV_AGENT_ID`` / ``DEV_AGENT_PASSWORD`` (``agent1`` / ``agent1-dev-password``). Setting a
real ``AUTH_SECRET`` (production) removes it; there is no default account in production.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infrastructure.auth.agent_file import (
    AgentExists,
    Credentials,
    add_agent_to_env_file,
    add_supervisor_to_env_file,
    agents_in_env_file,
    check_agent_id,
    existing_agent_message,
    load_credentials,
    save_credentials,
)
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


def generate_password() -> str:
    """A random password: 16 characters of URL-safe base64 (96 bits), easy to copy."""
    return secrets.token_urlsafe(12)


# --- first run -------------------------------------------------------------------------------

RESET_HINT: Final = "python -m infrastructure.auth.passwords add <id> --force"


@dataclass(frozen=True, slots=True)
class SignIn:
    """How to sign in on the workbench, as far as this machine knows."""

    credentials: Credentials | None
    agent_ids: tuple[str, ...] = ()
    created: bool = False

    def describe(self) -> str:
        if self.credentials is not None:
            return f"sign in as {self.credentials.agent_id} / {self.credentials.password}"
        if self.agent_ids:
            ids = ", ".join(self.agent_ids)
            return (
                f"sign in as one of the agents in AGENTS ({ids}); to set a new password: "
                f"{RESET_HINT}, then restart"
            )
        return f"no agent can sign in (AGENTS is empty): add one with {RESET_HINT}"


def ensure_agent_account(
    env_file: Path, credentials_file: Path, load_settings: Callable[[], Settings]
) -> SignIn:
    """Make sure an agent can sign in, and say how.

    No ``AGENTS`` configured (in the environment or ``env_file``): create ``agent1`` with a
    random password, its hash into ``env_file`` and the password into ``credentials_file``
    (mode 0600). Either way the password from ``credentials_file`` is returned only while the
    configured hash of that account still matches it (after ``add --force`` it does not)."""
    settings = load_settings()
    created = False
    if not settings.AGENTS and not agents_in_env_file(env_file):
        credentials = Credentials(DEV_AGENT_ID, generate_password())
        # The password first: a hash in .env is never left without a way to learn its password.
        save_credentials(credentials_file, credentials)
        add_agent_to_env_file(env_file, credentials.agent_id, hash_password(credentials.password))
        settings = load_settings()
        created = True
    accounts = agent_accounts(settings)
    stored = load_credentials(credentials_file)
    if stored is not None and verify_password(accounts.get(stored.agent_id, ""), stored.password):
        return SignIn(stored, tuple(sorted(accounts)), created)
    return SignIn(None, tuple(sorted(accounts)), created)


# --- command line ----------------------------------------------------------------------------


def _read_password(*, terminal: bool, prompt: str = "Password: ") -> str:
    if terminal:
        first = getpass.getpass(prompt)
        if first and getpass.getpass("Again: ") != first:
            raise ValueError("the passwords differ")
        return first
    # Piped: the first line, without its line ending (and nothing else stripped: spaces
    # inside or around a password are part of it).
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def _check_length(password: str) -> str:
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def _add_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.auth.passwords add",
        description="Add an agent account to AGENTS in .env (restart the services after).",
    )
    parser.add_argument("agent_id", help="1-64 letters, digits, '_' or '-'")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing agent")
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument(
        "--supervisor",
        action="store_true",
        help="also list it in SUPERVISORS (the team's live view, forced takeover)",
    )
    return parser


def _add(argv: Sequence[str]) -> int:
    args = _add_parser().parse_args(argv)
    generated = False
    try:
        check_agent_id(args.agent_id)
        if not args.force and args.agent_id in agents_in_env_file(args.env_file):
            # Before asking for a password that would be thrown away.
            raise AgentExists(existing_agent_message(args.env_file, args.agent_id))
        if args.password_stdin:
            password = _read_password(terminal=False)
        elif sys.stdin.isatty():
            password = _read_password(terminal=True, prompt="Password (empty: generate one): ")
        else:
            password = ""
        if not password:
            password, generated = generate_password(), True
        replaced = add_agent_to_env_file(
            args.env_file, args.agent_id, hash_password(_check_length(password)), force=args.force
        )
    except ValueError as exc:  # AgentFileError too
        print(f"error: {exc}", file=sys.stderr)
        return 1
    action = "replaced" if replaced else "added"
    print(f"{action} agent {args.agent_id} in {args.env_file}")
    if args.supervisor:
        try:
            add_supervisor_to_env_file(args.env_file, args.agent_id)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{args.agent_id} is a supervisor (SUPERVISORS in {args.env_file})")
    if generated:
        print(f"sign in as {args.agent_id} / {password}")
    configured = Settings(_env_file=args.env_file).AGENTS
    if configured.get(args.agent_id) is None:
        print(
            "warning: AGENTS is set in the environment, which wins over the file: "
            "this account is not used until it is unset",
            file=sys.stderr,
        )
    print("restart the services (Ctrl-C, make run) to use it")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``add <id>``: an account into ``.env``; no arguments: the hash of a password on stdin."""
    argv = list(argv or [])
    if argv and argv[0] == "add":
        return _add(argv[1:])
    if argv:
        print(
            "usage: python -m infrastructure.auth.passwords < password.txt\n"
            "       python -m infrastructure.auth.passwords add <id> "
            "[--password-stdin] [--force] [--env-file .env]",
            file=sys.stderr,
        )
        return 2
    try:
        print(hash_password(_check_length(_read_password(terminal=sys.stdin.isatty()))))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
