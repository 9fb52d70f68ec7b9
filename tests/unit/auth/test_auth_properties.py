"""Hypothesis properties: Last-Event-ID cursors, name validation, token round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infrastructure.auth.tokens import Role, is_strict_name, issue_token, verify_token
from infrastructure.bus.cursor import MAX_CURSOR_LENGTH, format_cursor, parse_cursor
from infrastructure.events import NAME_PATTERN, is_valid_name
from tests.support.auth import make_settings

U64 = 2**64 - 1
_NAME_FULL = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = r"[0-9a-z]{1,16}\.[0-9]{1,20}-[0-9]{1,20}"
_ID_FULL = re.compile(rf"{_TOKEN}(?:,{_TOKEN})*")


def parse_last_event_id(text: str) -> list[tuple[str, str]]:
    """The bus's parser, told to expect as many channels as the text has positions."""
    return parse_cursor(text, text.count(",") + 1)


epochs = st.from_regex(r"[0-9a-z]{1,16}", fullmatch=True)
stream_ids = st.tuples(st.integers(0, U64), st.integers(0, U64)).map(lambda t: f"{t[0]}-{t[1]}")
positions = st.lists(st.tuples(epochs, stream_ids), min_size=1, max_size=8)

# Text that is *almost* an id: the alphabet of ids plus separators, spaces and other digits.
near_ids = st.text(alphabet="0123456789az.-,: \n\t١Z+*$", max_size=80)
anything = st.one_of(st.text(max_size=200), near_ids, st.from_regex(_ID_FULL, fullmatch=True))

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(positions)
def test_parse_accepts_what_format_produces(values: list[tuple[str, str]]) -> None:
    text = format_cursor(values)
    if len(text) > MAX_CURSOR_LENGTH:
        return
    assert _ID_FULL.fullmatch(text)
    assert parse_last_event_id(text) == values


@PROPERTY
@given(anything)
@example("e1.5-1\n")
@example("e1.18446744073709551616-0")
@example("")
def test_parse_rejects_garbage_with_value_error_only(text: str) -> None:
    try:
        result = parse_last_event_id(text)
    except ValueError:
        # Rejected: then it is not a well-formed id within Redis's number range.
        if _ID_FULL.fullmatch(text) and len(text) <= MAX_CURSOR_LENGTH:
            numbers = [int(n) for n in re.findall(r"\.([0-9]+)-([0-9]+)", text) for n in n]
            assert any(n > U64 for n in numbers)
        return
    # Accepted: then it matches the format exactly, and its canonical form round-trips.
    assert _ID_FULL.fullmatch(text)
    assert result is not None
    assert parse_last_event_id(format_cursor(result)) == result


@PROPERTY
@given(st.from_regex(_ID_FULL, fullmatch=True))
def test_every_well_formed_id_in_range_is_accepted(text: str) -> None:
    numbers = [int(n) for pair in re.findall(r"\.([0-9]+)-([0-9]+)", text) for n in pair]
    if len(text) <= MAX_CURSOR_LENGTH and all(n <= U64 for n in numbers):
        result = parse_last_event_id(text)
        assert len(result) == text.count(",") + 1


names_and_text = st.one_of(
    st.text(max_size=80),
    st.from_regex(NAME_PATTERN),  # search semantics: may carry a trailing newline
    st.from_regex(_NAME_FULL, fullmatch=True),
)


@PROPERTY
@given(names_and_text)
@example("s1")
@example("a" * 64)
@example("a" * 65)
@example("a:b")
@example("")
def test_strict_name_check_agrees_with_the_regex(text: str) -> None:
    assert is_strict_name(text) == bool(_NAME_FULL.fullmatch(text))


@PROPERTY
@given(names_and_text)
@example("s1\n")
def test_is_valid_name_agrees_with_the_regex(text: str) -> None:
    assert is_valid_name(text) == bool(_NAME_FULL.fullmatch(text))


_TOKEN_SETTINGS = make_settings()


@PROPERTY
@given(st.sampled_from(list(Role)), st.from_regex(_NAME_FULL, fullmatch=True))
def test_token_round_trip_for_any_valid_subject(role: Role, subject: str) -> None:
    principal = verify_token(_TOKEN_SETTINGS, issue_token(_TOKEN_SETTINGS, role, subject))
    assert (principal.role, principal.subject) == (role, subject)


@PROPERTY
@given(st.text(max_size=300))
def test_verify_rejects_arbitrary_text_with_invalid_token_only(text: str) -> None:
    from infrastructure.auth.tokens import InvalidToken

    with pytest.raises(InvalidToken):
        verify_token(_TOKEN_SETTINGS, text)
