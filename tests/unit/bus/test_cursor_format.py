"""What a Last-Event-ID may be: exactly what the bus issues, nothing else."""

from __future__ import annotations

import pytest

from infrastructure.bus.cursor import InvalidCursor, parse_cursor


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("e1.1703246400000-0", [("e1", "1703246400000-0")]),
        ("e1.5-1,zz9.0-0", [("e1", "5-1"), ("zz9", "0-0")]),
        ("0.007-010", [("0", "7-10")]),  # canonical numbers
        ("a" * 16 + ".18446744073709551615-0", [("a" * 16, "18446744073709551615-0")]),
    ],
)
def test_well_formed_cursors_parse(value: str, expected: list[tuple[str, str]]) -> None:
    assert parse_cursor(value, len(expected)) == expected


@pytest.mark.parametrize(
    "value",
    [
        "1703246400000-0",  # no epoch
        "e1.5",
        "e1.5-",
        "e1.-5",
        "E1.5-1",  # upper case epoch
        "e1.5-1,",
        ",e1.5-1",
        "e1.5-1 ",
        " e1.5-1",
        "e1.5-1\n",
        "e1.5-1\r\n",
        "e1.5-1, e2.5-1",
        "e1.١٢-3",  # Arabic-Indic digits match \\d, not the format
        "e1.5-1;e2.5-1",
        "a" * 17 + ".5-1",
        "e1." + "1" * 21 + "-0",
        "e1.18446744073709551616-0",  # 2**64: not a Redis Stream id
        "e1.0-18446744073709551616",
        "e1.5-1," * 200 + "e1.5-1",  # too long
        "$",
        "+",
        "-",
        "e1.*-*",
    ],
)
def test_anything_else_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(InvalidCursor) as info:
        parse_cursor(value, value.count(",") + 1)
    assert "Last-Event-ID" in str(info.value)
    if len(value.strip()) > 3:
        assert value.strip() not in str(info.value)


def test_a_cursor_must_have_one_position_per_channel() -> None:
    with pytest.raises(InvalidCursor, match="2 channel"):
        parse_cursor("e1.5-1", 2)
