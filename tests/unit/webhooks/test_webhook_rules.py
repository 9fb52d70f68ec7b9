"""Webhooks without I/O: signatures, the WEBHOOKS setting, backoff and the ordering rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from infrastructure.config import Settings
from infrastructure.webhooks.schedule import Delivery, backoff, due, expired, may_send
from infrastructure.webhooks.signing import SignatureError, sign, verify

SECRET = "0123456789abcdef-secret"
BODY = b'{"id":"evt_1","type":"closed"}'


# --- signing ---


def test_a_signature_verifies_with_the_secret_and_the_exact_body() -> None:
    header = sign(SECRET, BODY, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, BODY, header, now=1_700_000_010) == 1_700_000_000


@pytest.mark.parametrize(
    ("secret", "body", "now", "complaint"),
    [
        ("another-secret-0123456", BODY, 1_700_000_000, "no v1 signature matches"),
        (SECRET, BODY + b" ", 1_700_000_000, "no v1 signature matches"),
        (SECRET, BODY, 1_700_000_301, "outside the tolerance"),
        (SECRET, BODY, 1_699_999_699, "outside the tolerance"),
    ],
)
def test_a_wrong_secret_body_or_time_is_refused(
    secret: str, body: bytes, now: int, complaint: str
) -> None:
    header = sign(SECRET, BODY, timestamp=1_700_000_000)
    with pytest.raises(SignatureError, match=complaint):
        verify(secret, body, header, now=now)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, timestamp=1_700_000_000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000"])
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, header, now=1_700_000_000)


def test_any_of_several_v1_signatures_may_match_while_a_secret_rotates() -> None:
    good = sign(SECRET, BODY, timestamp=1_700_000_000).split(",")[1]
    header = f"t=1700000000,v1={'0' * 64},{good}"
    assert verify(SECRET, BODY, header, now=1_700_000_000) == 1_700_000_000


# --- the setting ---


def hooks(*entries: dict[str, Any]) -> Settings:
    return Settings(_env_file=None, WEBHOOKS=list(entries))


def hook(**overrides: Any) -> dict[str, Any]:
    return {"url": "https://crm.example/hook", "secret": SECRET, "events": ["closed"], **overrides}


def test_webhooks_default_to_none_and_parse_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).WEBHOOKS == []
    monkeypatch.setenv("WEBHOOKS", json.dumps([hook(events=["closed", "message", "closed"])]))
    (parsed,) = Settings(_env_file=None).WEBHOOKS
    assert parsed.events == ("closed", "message")
    assert parsed.hook_id.startswith("h-")
    assert parsed.wants("message")
    assert not parsed.wants("rated")


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (hook(url="ftp://crm.example/hook"), "ftp://crm.example/hook"),
        (hook(url="not a url"), "not a url"),
        (hook(events=["closed", "reopened"]), "'reopened'"),
        (hook(events=[]), "events"),
        (hook(secret="short"), "secret"),
        (hook(colour="blue"), "colour"),
    ],
)
def test_a_bad_hook_is_a_clear_error_naming_it(entry: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as error:
        hooks(entry)
    assert named in str(error.value)
    assert "WEBHOOKS" in str(error.value)


def test_two_hooks_with_one_id_and_memory_mode_are_refused() -> None:
    with pytest.raises(ValidationError, match="share the id"):
        hooks(hook(id="crm"), hook(id="crm", url="https://other.example/"))
    with pytest.raises(ValidationError, match="USE_REDIS_SSE"):
        Settings(_env_file=None, USE_REDIS_SSE=False, WEBHOOKS=[hook()])


# --- backoff and order ---


def test_backoff_doubles_from_the_minimum_up_to_the_maximum() -> None:
    assert [backoff(n, 5, 3600) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert backoff(20, 5, 3600) == 3600
    assert backoff(10_000, 5, 3600) == 3600
    assert backoff(0, 5, 3600) == 0


def delivery(entry_id: str, session: str = "s1", hook: str = "crm", **kw: Any) -> Delivery:
    return Delivery(entry_id, hook, session, "message", "evt", b"{}", 0, **kw)


def test_only_the_head_of_a_session_and_hook_may_go() -> None:
    first, second = delivery("1-0"), delivery("2-0")
    heads = {("crm", "s1"): "1-0"}
    assert due([second, first], heads, now=0) == [first]
    # The head is retrying (its backoff not over): the next one still waits.
    first.next_at = 10
    assert due([second, first], heads, now=5) == []
    assert due([second, first], heads, now=10) == [first]
    # Done with the head: the next becomes it.
    assert due([second], {("crm", "s1"): "2-0"}, now=10) == [second]


def test_other_sessions_and_hooks_are_not_held_back() -> None:
    stuck = delivery("1-0", next_at=100)
    other_session = delivery("2-0", session="s2")
    other_hook = delivery("3-0", hook="erp")
    heads = {("crm", "s1"): "1-0", ("crm", "s2"): "2-0", ("erp", "s1"): "3-0"}
    assert due([stuck, other_session, other_hook], heads, now=0) == [other_session, other_hook]


def test_a_delivery_on_its_way_or_held_elsewhere_is_not_sent_again() -> None:
    assert not may_send(delivery("1-0", in_flight=True), "1-0", now=0)
    # Its head is held by another consumer: this one waits for it.
    assert not may_send(delivery("2-0"), "1-0", now=0)
    assert not may_send(delivery("2-0"), None, now=0)


def test_a_delivery_is_given_up_a_day_after_its_event() -> None:
    d = Delivery("1-0", "crm", "s1", "message", "evt", b"{}", created_ms=1_000)
    assert not expired(d, now_ms=1_000 + 86_399_000, max_age_seconds=86_400)
    assert expired(d, now_ms=1_000 + 86_400_000, max_age_seconds=86_400)
