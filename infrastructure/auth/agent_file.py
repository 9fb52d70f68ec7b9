"""Agent accounts in the ``.env`` file, and the first-run password kept beside them.

``AGENTS`` is written as one single-quoted line, ``AGENTS='{"alice": "$argon2id$..."}'``:
the ``$`` signs of an argon2 hash are then neither a shell's nor python-dotenv's business
(python-dotenv expands only ``${NAME}``, which no JSON of ids and argon2 hashes contains, and
which :func:`quote_env_value` refuses anyway). Every write goes to a temporary file first, is
read back with the parser :class:`~infrastructure.config.Settings` uses, and replaces the file
only if every variable reads back as intended; the file stays mode 0600.

The first-run password (``scripts/run_dev.py`` creates one account on the first run) is kept
in a separate git-ignored file, mode 0600, so that ``make run`` can print it again on later
runs; the caller shows it only while the account's hash in ``AGENTS`` still matches it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infrastructure.auth.tokens import is_strict_name
from infrastructure.config import read_env_file
from infrastructure.events import NAME_PATTERN

AGENTS_KEY: Final = "AGENTS"
SUPERVISORS_KEY: Final = "SUPERVISORS"
_KEY_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AgentFileError(ValueError):
    """The ``.env`` file cannot take this change (printed as it is: no secret in it)."""


class AgentExists(AgentFileError):
    pass


def check_agent_id(agent_id: str) -> None:
    if not is_strict_name(agent_id):
        raise AgentFileError(
            f"invalid agent id {agent_id!r}: 1 to 64 letters, digits, '_' or '-' ({NAME_PATTERN})"
        )


def existing_agent_message(path: Path, agent_id: str) -> str:
    return f"agent {agent_id!r} already exists in {path}: add --force to replace its password"


def quote_env_value(value: str) -> str:
    """``value`` single-quoted for a ``.env`` line that shells and python-dotenv read alike."""
    for bad, why in (("'", "a single quote"), ("\\", "a backslash"), ("${", "'${'")):
        if bad in value:
            raise AgentFileError(f"cannot write a value containing {why} to .env")
    if any(char in value for char in "\r\n\0"):
        raise AgentFileError("cannot write a value spanning lines to .env")
    return f"'{value}'"


def _line_key(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#") or "=" not in text:
        return None
    return text.removeprefix("export ").partition("=")[0].strip()


def _write_private(path: Path, text: str) -> None:
    """``text`` into ``path`` at once (a temporary file, then rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def set_env_value(path: Path, key: str, value: str) -> None:
    """Set ``key`` to ``value`` in the ``.env`` file ``path`` (created if missing): its line
    replaced where it was, else appended; every other line kept as it is."""
    if not _KEY_RE.fullmatch(key):
        raise AgentFileError(f"invalid variable name {key!r}")
    new_line = f"{key}={quote_env_value(value)}\n"
    old_text = path.read_text(encoding="utf-8") if path.is_file() else ""
    expected = {**read_env_file(path), key: value}
    lines: list[str] = []
    placed = False
    for line in old_text.splitlines(keepends=True):
        if _line_key(line) == key:
            if not placed:  # the last one won before; one line is left
                lines.append(new_line)
                placed = True
            continue
        lines.append(line)
    if not placed:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(new_line)
    text = "".join(lines)
    # Read it back the way Settings will before it replaces anything.
    with tempfile.TemporaryDirectory() as scratch:
        check = Path(scratch) / "env"
        check.write_text(text, encoding="utf-8")
        if read_env_file(check) != expected:
            raise AgentFileError(
                f"{path}: could not set {key} without changing other lines "
                f"(a value spanning several lines?); edit it by hand"
            )
    _write_private(path, text)


def agents_in_env_file(path: Path) -> dict[str, str]:
    """The ``AGENTS`` the file ``path`` itself sets (``{}`` when it sets none)."""
    raw = read_env_file(path).get(AGENTS_KEY, "").strip()
    if not raw:
        return {}
    try:
        agents = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AgentFileError(f"{path}: {AGENTS_KEY} is not valid JSON ({exc.msg})") from None
    if not isinstance(agents, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in agents.items()
    ):
        raise AgentFileError(f"{path}: {AGENTS_KEY} must be a JSON object of id -> hash")
    return agents


def add_agent_to_env_file(
    path: Path, agent_id: str, password_hash: str, *, force: bool = False
) -> bool:
    """Add (or, with ``force``, replace) ``agent_id`` in the ``AGENTS`` of ``path``.
    True when it replaced an existing account."""
    check_agent_id(agent_id)
    if not password_hash.startswith("$argon2"):
        raise AgentFileError("not an argon2 hash")
    agents = agents_in_env_file(path)
    existed = agent_id in agents
    if existed and not force:
        raise AgentExists(existing_agent_message(path, agent_id))
    agents[agent_id] = password_hash
    set_env_value(path, AGENTS_KEY, json.dumps(agents, separators=(", ", ": ")))
    return existed


def add_supervisor_to_env_file(path: Path, agent_id: str) -> bool:
    """List ``agent_id`` in the ``SUPERVISORS`` of ``path`` (comma-separated). True when it
    was not listed yet."""
    check_agent_id(agent_id)
    raw = read_env_file(path).get(SUPERVISORS_KEY, "").strip()
    if raw.startswith("["):
        try:
            listed = [str(i) for i in json.loads(raw)]
        except (json.JSONDecodeError, TypeError):
            raise AgentFileError(f"{path}: {SUPERVISORS_KEY} is not a valid JSON list") from None
    else:
        listed = [part.strip() for part in raw.split(",") if part.strip()]
    if agent_id in listed:
        return False
    set_env_value(path, SUPERVISORS_KEY, ",".join([*listed, agent_id]))
    return True


# --- the first-run password ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    agent_id: str
    password: str


def save_credentials(path: Path, credentials: Credentials) -> None:
    body = {"agent_id": credentials.agent_id, "password": credentials.password}
    _write_private(path, json.dumps(body) + "\n")


def load_credentials(path: Path) -> Credentials | None:
    """What :func:`save_credentials` wrote, or None (no file, or not one of ours)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    agent_id, password = body.get("agent_id"), body.get("password")
    if isinstance(agent_id, str) and isinstance(password, str) and agent_id and password:
        return Credentials(agent_id, password)
    return None
