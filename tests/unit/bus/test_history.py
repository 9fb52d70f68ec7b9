"""History without I/O: Last-Event-ID cursors, the gap judgement, the in-memory history."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.bus import history
from infrastructure.bus.cursor import MAX_CURSOR_LENGTH, InvalidCursor, format_cursor, parse_cursor
from infrastructure.bus.event import ORIGIN_EPOCH, ORIGIN_ID, Event
from infrastructure.bus.history import MemoryHistory, deliver_replay, judge_replay, new_epoch
from infrastructure.bus.listener import Listener
from infrastructure.events import build_envelope, dumps

CH = "sse:session:s1"


def body(n: int) -> bytes:
    return dumps(build_envelope("new_message", {"n": n}, "tests"))


def ns(events: list[Event]) -> list[int]:
    return [e.envelope()["payload"]["n"] for e in events]


# --- cursors ---

epochs = st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=16)
positions = st.tuples(epochs, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1)).map(
    lambda t: (t[0], f"{t[1]}-{t[2]}")
)


@given(st.lists(positions, min_size=1, max_size=4))
def test_cursor_format_parse_round_trip(cursor: list[tuple[str, str]]) -> None:
    text = format_cursor(cursor)
    if len(text) > MAX_CURSOR_LENGTH:
        with pytest.raises(InvalidCursor):
            parse_cursor(text, len(cursor))
        return
    assert parse_cursor(text, len(cursor)) == cursor
    assert format_cursor(parse_cursor(text, len(cursor))) == text


def test_cursor_examples() -> None:
    assert parse_cursor("k3j2.1703246400000-0,0.0-0", 2) == [
        ("k3j2", "1703246400000-0"),
        (ORIGIN_EPOCH, ORIGIN_ID),
    ]
    # Leading zeros are normalised: the id is compared as numbers anyway.
    assert parse_cursor("ab.0017-002", 1) == [("ab", "17-2")]
    with pytest.raises(InvalidCursor):  # exactly what the bus issued, nothing around it
        parse_cursor(" ab.1-2 ", 1)


@pytest.mark.parametrize(
    ("value", "channels"),
    [
        ("ab.1-2", 2),  # one position for a two-channel stream
        ("ab.1-2,cd.3-4", 1),
        ("", 1),
        ("ab", 1),
        ("ab.1", 1),
        ("AB.1-2", 1),  # epochs are lowercase base 36
        ("a*.1-2", 1),
        ("ab.1-2-3", 1),
        ("ab.x-2", 1),
        ("12345678901234567.1-2", 1),  # epoch longer than 16
        ("ab.1-" + "9" * 21, 1),
        ("ab.1-2," * 40 + "ab.1-2", 41),  # longer than MAX_CURSOR_LENGTH
    ],
)
def test_cursor_rejects_what_the_service_did_not_issue(value: str, channels: int) -> None:
    with pytest.raises(InvalidCursor):
        parse_cursor(value, channels)


def test_new_epoch_is_a_valid_cursor_epoch() -> None:
    epoch = new_epoch()
    assert parse_cursor(f"{epoch}.1-0", 1) == [(epoch, "1-0")]
    assert new_epoch() != epoch


# --- judge_replay ---


@pytest.mark.parametrize(
    ("requested", "current", "first", "max_deleted", "gap"),
    [
        ((ORIGIN_EPOCH, ORIGIN_ID), "e", (5, 0), (0, 0), False),  # saw nothing, nothing trimmed
        ((ORIGIN_EPOCH, ORIGIN_ID), "e", (5, 0), (4, 0), True),  # saw nothing, some trimmed
        ((ORIGIN_EPOCH, ORIGIN_ID), None, None, (0, 0), False),
        (("e", "3-0"), None, None, (0, 0), True),  # history gone since
        (("e", "3-0"), "f", (1, 0), (0, 0), True),  # another epoch
        (("e", "3-0"), "e", (5, 0), (4, 0), True),  # older than what was kept
        (("e", "4-0"), "e", (5, 0), (4, 0), False),  # exactly the newest trimmed: no gap
        (("e", "9-0"), "e", (5, 0), (4, 0), False),
    ],
)
def test_judge_replay(
    requested: tuple[str, str],
    current: str | None,
    first: tuple[int, int] | None,
    max_deleted: tuple[int, int],
    gap: bool,
) -> None:
    assert judge_replay(*requested, current, first, max_deleted) is gap


# --- MemoryHistory ---


def test_memory_history_ids_increase_within_one_epoch() -> None:
    memory = MemoryHistory(maxlen=100, ttl_seconds=60)
    events = [memory.append(CH, body(n)) for n in range(50)]
    assert len({e.epoch for e in events}) == 1
    keys = [e.key for e in events]
    assert keys == sorted(keys)
    assert len(set(keys)) == 50
    assert memory.position(CH) == (events[-1].epoch, events[-1].id)
    assert memory.position("sse:session:other") is None


def test_memory_history_replays_what_came_after_a_position() -> None:
    memory = MemoryHistory(maxlen=100, ttl_seconds=60)
    events = [memory.append(CH, body(n)) for n in range(5)]
    epoch = events[0].epoch
    replay = memory.after(CH, epoch, events[1].id)
    assert not replay.reset
    assert ns(replay.events) == [2, 3, 4]
    assert ns(memory.after(CH, ORIGIN_EPOCH, ORIGIN_ID).events) == [0, 1, 2, 3, 4]
    assert memory.after(CH, epoch, events[-1].id).events == []


def test_memory_history_resets_when_the_position_is_older_than_history_kept() -> None:
    memory = MemoryHistory(maxlen=3, ttl_seconds=60)
    events = [memory.append(CH, body(n)) for n in range(6)]
    epoch = events[0].epoch
    too_old = memory.after(CH, epoch, events[1].id)
    assert too_old.reset
    assert ns(too_old.events) == [3, 4, 5]
    # The newest trimmed event is the oldest position that still has no gap.
    just_kept = memory.after(CH, epoch, events[2].id)
    assert not just_kept.reset
    assert ns(just_kept.events) == [3, 4, 5]
    # A client that saw nothing, where something was trimmed, has a gap too.
    assert memory.after(CH, ORIGIN_EPOCH, ORIGIN_ID).reset


def test_memory_history_resets_on_another_epoch() -> None:
    memory = MemoryHistory(maxlen=10, ttl_seconds=60)
    events = [memory.append(CH, body(n)) for n in range(2)]
    replay = memory.after(CH, "otherepoch", events[0].id)
    assert replay.reset
    assert ns(replay.events) == [0, 1]


def test_memory_history_unknown_channel() -> None:
    memory = MemoryHistory(maxlen=10, ttl_seconds=60)
    assert memory.after(CH, ORIGIN_EPOCH, ORIGIN_ID) == history.Replay([], reset=False)
    # The client saw events of a history that no longer exists here: a gap.
    assert memory.after(CH, "gone", "5-0") == history.Replay([], reset=True)


def test_memory_history_expires_and_starts_a_new_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr("infrastructure.bus.history.time.time", lambda: now[0])
    memory = MemoryHistory(maxlen=10, ttl_seconds=60)
    old = memory.append(CH, body(0))
    now[0] += 61
    assert memory.position(CH) is None
    assert memory.after(CH, old.epoch, old.id).reset
    new = memory.append(CH, body(1))
    assert new.epoch != old.epoch


def test_memory_history_clear() -> None:
    memory = MemoryHistory(maxlen=10, ttl_seconds=60)
    memory.append(CH, body(0))
    memory.clear()
    assert memory.position(CH) is None


# --- a replay delivered into a listener ---


async def test_deliver_replay_puts_history_before_live_events_once() -> None:
    memory = MemoryHistory(maxlen=10, ttl_seconds=60)
    seen = memory.append(CH, body(0))
    missed = [memory.append(CH, body(n)) for n in (1, 2)]
    listener = Listener([CH], maxsize=10, cursor=[(seen.epoch, seen.id)])
    listener.push(missed[-1])  # live copy of the newest missed event, arrived meanwhile
    deliver_replay(listener, CH, memory.after(CH, seen.epoch, seen.id))
    newer = memory.append(CH, body(3))
    listener.push(missed[-1])
    listener.push(newer)
    batch = await listener.next_batch()
    assert ns([e for e in batch if isinstance(e, Event)]) == [1, 2, 3]


async def test_deliver_replay_on_a_gap_sends_one_reset_at_the_newest_kept() -> None:
    memory = MemoryHistory(maxlen=2, ttl_seconds=60)
    events = [memory.append(CH, body(n)) for n in range(4)]
    listener = Listener([CH], maxsize=10)
    deliver_replay(listener, CH, memory.after(CH, events[0].epoch, events[0].id))
    listener.push(events[-1])  # a live duplicate of the newest kept: dropped
    batch = await listener.next_batch()
    assert len(batch) == 1
    reset = batch[0]
    assert isinstance(reset, Event)
    assert reset.type == "reset"
    assert reset.token == events[-1].token
