from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from infrastructure.auth import tokens as tokens_module
from infrastructure.auth.tokens import (
    InvalidToken,
    Principal,
    Role,
    check_auth_secret,
    issue_token,
    verify_token,
)
from infrastructure.config import Settings, get_settings
from tests.support.auth import OTHER_SECRET, SECRET, make_settings


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "s1",
        "role": "customer",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


@pytest.mark.parametrize(
    ("role", "subject"),
    [(Role.CUSTOMER, "s1"), (Role.AGENT, "agent-7"), (Role.SERVICE, "order_system")],
)
def test_round_trip(settings: Settings, role: Role, subject: str) -> None:
    principal = verify_token(settings, issue_token(settings, role, subject))
    assert principal.role is role
    assert principal.subject == subject
    assert principal.token_id
    assert isinstance(principal, Principal)


def test_role_may_be_given_as_text(settings: Settings) -> None:
    assert verify_token(settings, issue_token(settings, "agent", "a1")).role is Role.AGENT


def test_each_token_has_its_own_id(settings: Settings) -> None:
    first = verify_token(settings, issue_token(settings, Role.CUSTOMER, "s1"))
    second = verify_token(settings, issue_token(settings, Role.CUSTOMER, "s1"))
    assert first.token_id != second.token_id


@pytest.mark.parametrize(
    ("role", "field"),
    [
        (Role.CUSTOMER, "CUSTOMER_TOKEN_TTL_SECONDS"),
        (Role.AGENT, "AGENT_TOKEN_TTL_SECONDS"),
        (Role.SERVICE, "SERVICE_TOKEN_TTL_SECONDS"),
    ],
)
def test_ttl_per_role_from_settings(role: Role, field: str) -> None:
    settings = make_settings(**{field: 1234})
    claims = jwt.decode(issue_token(settings, role, "x1"), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 1234
    assert set(claims) == {"exp", "iat", "jti", "role", "sub"}


def test_explicit_ttl(settings: Settings) -> None:
    claims = jwt.decode(
        issue_token(settings, Role.AGENT, "a1", ttl=5), SECRET, algorithms=["HS256"]
    )
    assert claims["exp"] - claims["iat"] == 5


@pytest.mark.parametrize(
    ("role", "subject", "ttl"),
    [
        ("admin", "s1", None),
        (Role.CUSTOMER, "s1\n", None),
        (Role.CUSTOMER, "a:b", None),
        (Role.CUSTOMER, "", None),
        (Role.CUSTOMER, "x" * 65, None),
        (Role.CUSTOMER, "s1", 0),
    ],
)
def test_issue_rejects_bad_input(
    settings: Settings, role: str, subject: str, ttl: int | None
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
        issue_token(settings, role, subject, ttl)


def test_expired_token_is_rejected(settings: Settings) -> None:
    now = int(time.time())
    token = _sign(_claims(iat=now - 3600, exp=now - 60))
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(settings, token)


def test_token_signed_with_another_secret_is_rejected(settings: Settings) -> None:
    token = issue_token(make_settings(AUTH_SECRET=OTHER_SECRET), Role.AGENT, "a1")
    with pytest.raises(InvalidToken):
        verify_token(settings, token)


def test_alg_none_is_rejected(settings: Settings) -> None:
    # Crafted by hand: no library would sign this, which is the point.
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(role='service'))}."
    with pytest.raises(InvalidToken):
        verify_token(settings, token)


@pytest.mark.parametrize("alg_header", ["None", "NONE", "HS512", "RS256"])
def test_other_alg_headers_with_empty_signature_are_rejected(
    settings: Settings, alg_header: str
) -> None:
    token = f"{_b64({'alg': alg_header, 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(InvalidToken):
        verify_token(settings, token)


def test_token_signed_with_another_algorithm_is_rejected() -> None:
    # Same secret (long enough for HS512), valid HS512 signature: refused, the algorithm is
    # pinned.
    long_secret = "k" * 64
    settings = make_settings(AUTH_SECRET=long_secret)
    with pytest.raises(InvalidToken):
        verify_token(settings, _sign(_claims(), secret=long_secret, algorithm="HS512"))


def test_tampered_payload_is_rejected(settings: Settings) -> None:
    header, _, signature = issue_token(settings, Role.CUSTOMER, "s1").split(".")
    forged = f"{header}.{_b64(_claims(role='agent', sub='a1'))}.{signature}"
    with pytest.raises(InvalidToken):
        verify_token(settings, forged)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "role", "jti"])
def test_missing_claim_is_rejected(settings: Settings, missing: str) -> None:
    claims = _claims()
    del claims[missing]
    with pytest.raises(InvalidToken):
        verify_token(settings, _sign(claims))


@pytest.mark.parametrize(
    "overrides",
    [
        {"role": "admin"},
        {"role": "Customer"},
        {"role": ["customer"]},
        {"role": 1},
        {"sub": "s1\n"},
        {"sub": "a:b"},
        {"sub": "*"},
        {"sub": 42},
        {"jti": ""},
        {"jti": 5},
        {"exp": "tomorrow"},
        {"iat": int(time.time()) + 3600},
    ],
    ids=repr,
)
def test_wrong_claims_are_rejected(settings: Settings, overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        verify_token(settings, _sign(_claims(**overrides)))


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "....", "eyJ.eyJ.", "x" * 5000, "Bearer abc", "ü.ö.ä"],
    ids=lambda t: t[:12],
)
def test_malformed_tokens_are_rejected(settings: Settings, token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(settings, token)


def test_error_message_never_contains_the_token(settings: Settings) -> None:
    token = issue_token(make_settings(AUTH_SECRET=OTHER_SECRET), Role.AGENT, "a1")
    with pytest.raises(InvalidToken) as info:
        verify_token(settings, token)
    assert token not in str(info.value)
    assert info.value.__cause__ is None


def test_short_secret_is_refused_loudly() -> None:
    short = make_settings(AUTH_SECRET="short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        check_auth_secret(short)
    with pytest.raises(jwt.InvalidKeyError):
        issue_token(short, Role.CUSTOMER, "s1")
    check_auth_secret(make_settings())


def test_cli_main_prints_a_verifiable_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tokens_module, "get_settings", make_settings)
    assert tokens_module.main(["agent", "a1", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    principal = verify_token(make_settings(), token)
    assert (principal.role, principal.subject) == (Role.AGENT, "a1")


def test_cli_rejects_bad_arguments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tokens_module, "get_settings", make_settings)
    for argv in (["admin", "x"], ["customer", "bad name"], ["customer", "s1", "--ttl", "0"]):
        with pytest.raises(SystemExit) as info:
            tokens_module.main(argv)
        assert info.value.code == 2
    assert capsys.readouterr().out == ""


def test_python_dash_m_infrastructure_tokens(tmp_path: Path) -> None:
    env = {**os.environ, "AUTH_SECRET": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "infrastructure.tokens", "customer", "s1", "--ttl", "30"],
        cwd=tmp_path,  # no .env there
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    principal = verify_token(make_settings(), result.stdout.strip())
    assert (principal.role, principal.subject) == (Role.CUSTOMER, "s1")
    assert "development" not in result.stderr


def test_get_settings_is_the_one_the_cli_uses() -> None:
    # The CLI signs with the configured secret, i.e. what the services verify with.
    assert vars(tokens_module)["get_settings"] is get_settings


def test_a_cached_verification_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings()
    token = issue_token(settings, Role.AGENT, "cached", ttl=60)
    assert verify_token(settings, token).subject == "cached"  # now cached
    assert verify_token(settings, token).subject == "cached"  # from the cache
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)  # the clock tokens.py reads
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(settings, token)


def test_a_cached_verification_does_not_survive_a_new_secret() -> None:
    settings = make_settings()
    token = issue_token(settings, Role.AGENT, "rotated")
    assert verify_token(settings, token).subject == "rotated"
    rotated = make_settings(AUTH_SECRET=OTHER_SECRET)
    with pytest.raises(InvalidToken):
        verify_token(rotated, token)


# --- the cache of verified tokens ---


def test_a_verified_token_is_answered_from_the_cache(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issue_token(settings, Role.SERVICE, "svc")
    first = verify_token(settings, token)

    def no_decoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("decoded again")

    monkeypatch.setattr(tokens_module._JWT, "decode", no_decoding)
    assert verify_token(settings, token) is first


def test_a_cached_token_still_expires(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    token = issue_token(settings, Role.AGENT, "a1", ttl=60)
    verify_token(settings, token)
    later = time.time() + 60 + tokens_module.CLOCK_LEEWAY_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(settings, token)


def test_a_cached_token_is_not_valid_under_another_secret(settings: Settings) -> None:
    token = issue_token(settings, Role.AGENT, "a1")
    verify_token(settings, token)
    with pytest.raises(InvalidToken):
        verify_token(make_settings(AUTH_SECRET=OTHER_SECRET), token)
    assert verify_token(settings, token).subject == "a1"


def test_the_cache_is_bounded() -> None:
    cache = tokens_module._VerifiedTokens(maxsize=3)
    principal = Principal(role=Role.AGENT, subject="a1", token_id="j")
    far = time.time() + 3600
    for n in range(5):
        cache.put(SECRET, f"t{n}", principal, far)
    assert [cache.get(SECRET, f"t{n}") for n in range(5)] == [None, None, *[principal] * 3]
