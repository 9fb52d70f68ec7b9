"""Agent accounts written into .env (python -m infrastructure.auth.passwords add, make run's
first run): quoted so that the argon2 ``$`` survives, read back exactly as Settings reads it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure.auth.agent_file import (
    AgentExists,
    AgentFileError,
    Credentials,
    add_agent_to_env_file,
    add_supervisor_to_env_file,
    agents_in_env_file,
    load_credentials,
    quote_env_value,
    save_credentials,
    set_env_value,
)
from infrastructure.auth.passwords import (
    DEV_AGENT_ID,
    check_agent_password,
    ensure_agent_account,
    hash_password,
    verify_password,
)
from infrastructure.config import Settings


@pytest.fixture(autouse=True)
def _no_agents_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTS", raising=False)
    monkeypatch.setenv("AUTH_SECRET", "test-secret-0123456789-0123456789-abcdef")


@pytest.fixture(scope="module")
def a_hash() -> str:
    return hash_password("pw with $dollar and ${BRACES}")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_written_hash_round_trips_through_settings(tmp_path: Path, a_hash: str) -> None:
    env = tmp_path / ".env"
    env.write_text("# kept\nexport OTHER=1\nAUTH_SECRET=abc\n")
    add_agent_to_env_file(env, "alice", a_hash)
    assert {"alice": a_hash} == Settings(_env_file=env).AGENTS
    assert a_hash.count("$") >= 4  # the hash really holds what a shell or dotenv could expand
    assert env.read_text().startswith("# kept\nexport OTHER=1\nAUTH_SECRET=abc\nAGENTS='{")
    assert _mode(env) == 0o600
    # And a shell reads the line the same way (single quotes: no expansion).
    shell = subprocess.run(
        ["sh", "-c", f'. "{env}" && printf %s "$AGENTS"'], capture_output=True, text=True
    )
    assert json.loads(shell.stdout) == {"alice": a_hash}


def test_adding_keeps_others_and_replaces_only_with_force(tmp_path: Path, a_hash: str) -> None:
    env = tmp_path / ".env"
    other = hash_password("other")
    assert add_agent_to_env_file(env, "alice", a_hash) is False
    assert add_agent_to_env_file(env, "bob", other) is False
    with pytest.raises(AgentExists, match="--force"):
        add_agent_to_env_file(env, "alice", other)
    assert agents_in_env_file(env) == {"alice": a_hash, "bob": other}
    assert add_agent_to_env_file(env, "alice", other, force=True) is True
    assert {"alice": other, "bob": other} == Settings(_env_file=env).AGENTS
    assert env.read_text().count("AGENTS=") == 1


@pytest.mark.parametrize("bad_id", ["bad id", "", "x" * 65, "a/b", "会话", "a\n"])
def test_a_bad_id_is_refused_and_nothing_written(tmp_path: Path, bad_id: str, a_hash: str) -> None:
    env = tmp_path / ".env"
    with pytest.raises(AgentFileError, match="invalid agent id"):
        add_agent_to_env_file(env, bad_id, a_hash)
    assert not env.exists()


@pytest.mark.parametrize("value", ["it's", "a\\b", "${HOME}", "two\nlines"])
def test_values_that_cannot_be_quoted_safely_are_refused(value: str) -> None:
    with pytest.raises(AgentFileError):
        quote_env_value(value)


def test_a_file_it_cannot_edit_cleanly_is_left_alone(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    original = 'NOTE="first\nAGENTS=inside a multi-line value"\nAUTH_SECRET=abc\n'
    env.write_text(original)
    with pytest.raises(AgentFileError, match="edit it by hand"):
        set_env_value(env, "AGENTS", "{}")
    assert env.read_text() == original


def test_credentials_file_is_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "run" / "first-agent.json"
    save_credentials(path, Credentials("agent1", "s3cret"))
    assert _mode(path) == 0o600
    assert load_credentials(path) == Credentials("agent1", "s3cret")
    path.write_text("not json")
    assert load_credentials(path) is None
    assert load_credentials(tmp_path / "missing") is None


def test_first_run_creates_one_account_and_shows_it_while_it_matches(tmp_path: Path) -> None:
    env, creds = tmp_path / ".env", tmp_path / "run" / "first-agent.json"

    def load() -> Settings:
        return Settings(_env_file=env)

    first = ensure_agent_account(env, creds, load)
    assert first.created
    assert first.credentials is not None
    assert first.credentials.agent_id == DEV_AGENT_ID
    password = first.credentials.password
    assert len(password) >= 16
    assert check_agent_password(load(), DEV_AGENT_ID, password)
    assert first.describe() == f"sign in as {DEV_AGENT_ID} / {password}"

    again = ensure_agent_account(env, creds, load)  # a later run: same account, shown again
    assert not again.created
    assert again.credentials == first.credentials
    assert list(agents_in_env_file(env)) == [DEV_AGENT_ID]

    # The password was changed with `add --force`: the stored one is not shown any more.
    add_agent_to_env_file(env, DEV_AGENT_ID, hash_password("changed"), force=True)
    changed = ensure_agent_account(env, creds, load)
    assert changed.credentials is None
    assert not changed.created
    assert password not in changed.describe()
    assert "add <id> --force" in changed.describe()
    assert DEV_AGENT_ID in changed.describe()


def test_configured_agents_are_not_touched(tmp_path: Path, a_hash: str) -> None:
    env, creds = tmp_path / ".env", tmp_path / "first-agent.json"
    add_agent_to_env_file(env, "alice", a_hash)
    before = env.read_text()
    sign_in = ensure_agent_account(env, creds, lambda: Settings(_env_file=env))
    assert not sign_in.created
    assert sign_in.credentials is None
    assert sign_in.agent_ids == ("alice",)
    assert env.read_text() == before
    assert not creds.exists()


def _cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrastructure.auth.passwords", "add", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_add_generates_or_reads_a_password_and_writes_env(tmp_path: Path) -> None:
    generated = _cli(tmp_path, "alice")
    assert generated.returncode == 0, generated.stderr
    line = next(ln for ln in generated.stdout.splitlines() if ln.startswith("sign in as "))
    agent_id, password = line.removeprefix("sign in as ").split(" / ")
    assert agent_id == "alice"
    agents = Settings(_env_file=tmp_path / ".env").AGENTS  # the default: ./.env
    assert verify_password(agents["alice"], password)

    piped = _cli(tmp_path, "bob", "--password-stdin", stdin=" b$b pw \n")
    assert piped.returncode == 0, piped.stderr
    assert "b$b" not in piped.stdout  # a password given is not echoed
    assert verify_password(Settings(_env_file=tmp_path / ".env").AGENTS["bob"], " b$b pw ")


def test_cli_add_refuses_bad_ids_and_existing_ones_without_force(tmp_path: Path) -> None:
    bad = _cli(tmp_path, "no spaces")
    assert bad.returncode == 1
    assert "invalid agent id 'no spaces'" in bad.stderr
    assert not (tmp_path / ".env").exists()

    assert _cli(tmp_path, "alice", "--password-stdin", stdin="one\n").returncode == 0
    again = _cli(tmp_path, "alice", "--password-stdin", stdin="two\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "--force" in again.stderr
    agents = Settings(_env_file=tmp_path / ".env").AGENTS
    assert verify_password(agents["alice"], "one")

    forced = _cli(tmp_path, "alice", "--force", "--password-stdin", stdin="two\n")
    assert forced.returncode == 0, forced.stderr
    assert verify_password(Settings(_env_file=tmp_path / ".env").AGENTS["alice"], "two")


def test_cli_add_supervisor_lists_it_in_supervisors(tmp_path: Path) -> None:
    lead = _cli(tmp_path, "lead", "--supervisor", "--password-stdin", stdin="pw-lead\n")
    assert lead.returncode == 0, lead.stderr
    assert "lead is a supervisor" in lead.stdout
    ana = _cli(tmp_path, "ana", "--supervisor", "--password-stdin", stdin="pw-ana\n")
    assert ana.returncode == 0, ana.stderr
    plain = _cli(tmp_path, "bo", "--password-stdin", stdin="pw-bo\n")
    assert plain.returncode == 0, plain.stderr
    settings = Settings(_env_file=tmp_path / ".env")
    assert settings.SUPERVISORS == ["lead", "ana"]
    assert sorted(settings.AGENTS) == ["ana", "bo", "lead"]
    # Listed once, whatever the file said before (a JSON list too).
    assert not add_supervisor_to_env_file(tmp_path / ".env", "lead")
    set_env_value(tmp_path / ".env", "SUPERVISORS", '["x"]')
    assert add_supervisor_to_env_file(tmp_path / ".env", "lead")
    assert Settings(_env_file=tmp_path / ".env").SUPERVISORS == ["x", "lead"]
