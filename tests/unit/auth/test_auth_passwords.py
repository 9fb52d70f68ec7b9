from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure.auth import passwords
from infrastructure.auth.passwords import (
    DEV_AGENT_ID,
    DEV_AGENT_PASSWORD,
    agent_accounts,
    authenticate_agent,
    check_agent_password,
    hash_password,
    verify_password,
)
from infrastructure.config import DEVELOPMENT_AUTH_SECRET
from tests.support.auth import make_settings


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password("correct horse battery staple")


def test_hash_and_verify(alice_hash: str) -> None:
    assert alice_hash.startswith("$argon2id$")
    assert "correct horse" not in alice_hash
    assert verify_password(alice_hash, "correct horse battery staple")
    assert not verify_password(alice_hash, "correct horse battery stapl")
    assert not verify_password(alice_hash, "")


def test_same_password_hashes_differently() -> None:
    assert hash_password("pw-1") != hash_password("pw-1")


@pytest.mark.parametrize("bad_hash", ["", "plain", "$argon2id$v=19$garbage", "$2b$12$bcrypt"])
def test_malformed_hash_is_a_mismatch_not_an_error(bad_hash: str) -> None:
    assert not verify_password(bad_hash, "anything")


def test_overlong_password_is_refused(alice_hash: str) -> None:
    assert not verify_password(alice_hash, "x" * 5000)


def test_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_configured_agents(alice_hash: str) -> None:
    settings = make_settings(AGENTS={"alice": alice_hash})
    assert agent_accounts(settings) == {"alice": alice_hash}
    assert check_agent_password(settings, "alice", "correct horse battery staple")
    assert not check_agent_password(settings, "alice", "wrong")
    assert not check_agent_password(settings, "bob", "correct horse battery staple")
    # With real accounts configured there is no development account, even on the dev secret.
    dev = make_settings(AUTH_SECRET=DEVELOPMENT_AUTH_SECRET, AGENTS={"alice": alice_hash})
    assert not check_agent_password(dev, DEV_AGENT_ID, DEV_AGENT_PASSWORD)


def test_agents_from_environment_json(monkeypatch: pytest.MonkeyPatch, alice_hash: str) -> None:
    monkeypatch.setenv("AGENTS", f'{{"alice": "{alice_hash}"}}')
    assert {"alice": alice_hash} == make_settings().AGENTS


def test_development_account_only_with_development_secret() -> None:
    dev = make_settings(AUTH_SECRET=DEVELOPMENT_AUTH_SECRET)
    assert set(agent_accounts(dev)) == {DEV_AGENT_ID}
    assert check_agent_password(dev, DEV_AGENT_ID, DEV_AGENT_PASSWORD)
    production = make_settings()  # a real secret, no AGENTS
    assert agent_accounts(production) == {}
    assert not check_agent_password(production, DEV_AGENT_ID, DEV_AGENT_PASSWORD)


@pytest.mark.parametrize(
    ("agents", "message"),
    [
        ({"bad id": "$argon2id$x"}, "invalid agent id"),
        ({"a1\n": "$argon2id$x"}, "invalid agent id"),
        ({"alice": "hunter2"}, "not an argon2 hash"),
    ],
)
def test_bad_agent_configuration_is_refused(agents: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        agent_accounts(make_settings(AGENTS=agents))
    assert "hunter2" not in str(info.value)


async def test_authenticate_agent_runs_off_the_loop(alice_hash: str) -> None:
    settings = make_settings(AGENTS={"alice": alice_hash})
    assert await authenticate_agent(settings, "alice", "correct horse battery staple")
    assert not await authenticate_agent(settings, "alice", "nope")
    assert not await authenticate_agent(settings, "nobody", "nope")


def test_cli_reads_stdin_and_prints_a_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(" s3cret pw \n"))
    assert passwords.main([]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password(printed, " s3cret pw ")  # spaces are part of a password
    assert "s3cret" not in printed


def test_cli_refuses_empty_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert passwords.main([]) == 1
    assert capsys.readouterr().out == ""


def test_python_dash_m_passwords(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infrastructure.auth.passwords"],
        input="pw-from-pipe\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert verify_password(result.stdout.strip(), "pw-from-pipe")
