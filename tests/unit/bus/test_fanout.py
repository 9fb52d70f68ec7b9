"""Local fan-out without I/O: Event wire forms, Listener buffers and the resume seam, LocalHub."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from infrastructure.bus.cursor import format_cursor
from infrastructure.bus.event import PING, Event, id_key
from infrastructure.bus.hub import LocalHub
from infrastructure.bus.listener import Listener, ListenerClosed
from infrastructure.events import build_envelope, dumps

CH = "sse:session:s1"
OTHER = "sse:broadcast"


def body(n: int, event_type: str = "new_message") -> bytes:
    return dumps(build_envelope(event_type, {"n": n}, "tests", timestamp=1_700_000_000))


def ev(n: int, epoch: str = "ep1", channel: str = CH, ms: int = 1000) -> Event:
    return Event(channel, epoch, f"{ms}-{n}", body(n))


def ns(items: list[Event | bytes]) -> list[int]:
    return [i.envelope()["payload"]["n"] for i in items if isinstance(i, Event)]


# --- Event ---


def test_id_key_orders_stream_ids_as_pairs() -> None:
    assert id_key("1703246400000-3") == (1703246400000, 3)
    assert id_key("5") == (5, 0)
    assert id_key("9-10") > id_key("9-9") > id_key("8-99")


def test_event_wire_forms() -> None:
    event = Event(CH, "k3j2", "1703246400000-0", body(1, "status_change"))
    assert event.token == "k3j2.1703246400000-0"
    assert event.type == "status_change"
    envelope = event.envelope()
    assert envelope == {
        "id": "1703246400000-0",
        "epoch": "k3j2",
        "type": "status_change",
        "payload": {"n": 1},
        "timestamp": 1_700_000_000,
        "source": "tests",
    }
    assert event.frame == b"id: k3j2.1703246400000-0\n" + event.data
    assert event.data.startswith(b"data: ")
    assert event.data.endswith(b"\n\n")
    assert orjson.loads(event.data[len(b"data: ") : -2]) == envelope


def test_event_without_id_has_no_id_line() -> None:
    # Published during an outage: the browser keeps its last real id.
    event = Event(CH, "", "", body(1))
    assert not event.frame.startswith(b"id:")
    assert event.frame == event.data


def test_event_type_of_a_body_not_built_by_build_envelope() -> None:
    event = Event(CH, "e", "1-0", b'{"payload":{},"type":"custom"}')
    assert event.type == "custom"


# --- Listener ---


async def test_listener_hands_out_everything_buffered_in_order() -> None:
    listener = Listener([CH], maxsize=10)
    for n in range(3):
        listener.push(ev(n))
    assert listener.pending() == 3
    assert ns(await listener.next_batch()) == [0, 1, 2]
    assert listener.pending() == 0


async def test_listener_wakes_a_waiting_consumer() -> None:
    listener = Listener([CH], maxsize=10)
    waiting = asyncio.create_task(listener.next_batch())
    await asyncio.sleep(0)  # let the consumer park on its waiter (not a wait for a condition)
    assert not waiting.done()
    listener.push(ev(7))
    async with asyncio.timeout(1):
        assert ns(await waiting) == [7]


async def test_overflow_closes_the_listener_as_slow() -> None:
    listener = Listener([CH], maxsize=3)
    for n in range(3):
        listener.push(ev(n))
    assert not listener.closed
    listener.push(ev(3))
    assert listener.close_reason == "slow"
    # After an overflow nothing buffered is handed out: the client resumes from history.
    with pytest.raises(ListenerClosed) as raised:
        await listener.next_batch()
    assert raised.value.reason == "slow"
    listener.push(ev(4))  # ignored once closed
    assert listener.pending() == 3


async def test_pings_never_count_as_falling_behind() -> None:
    listener = Listener([CH], maxsize=2)
    listener.push(ev(0))
    listener.push(ev(1))
    listener.push(PING)
    assert not listener.closed
    batch = await listener.next_batch()
    assert ns(batch) == [0, 1]
    assert batch[-1] is PING


async def test_clean_close_delivers_what_was_accepted_then_raises() -> None:
    listener = Listener([CH], maxsize=10)
    listener.push(ev(1))
    listener.close("done")
    assert ns(await listener.next_batch()) == [1]
    with pytest.raises(ListenerClosed) as raised:
        await listener.next_batch()
    assert raised.value.reason == "done"


async def test_close_wakes_a_waiting_consumer() -> None:
    listener = Listener([CH], maxsize=10)
    waiting = asyncio.create_task(listener.next_batch())
    await asyncio.sleep(0)  # park the consumer
    listener.close("shutdown")
    async with asyncio.timeout(1):
        with pytest.raises(ListenerClosed):
            await waiting


# --- the seam: history replay in front of live events, without duplicates ---


async def test_replay_goes_before_live_events_and_drops_their_duplicates() -> None:
    listener = Listener([CH], maxsize=100)
    # Registered before history is read: live events 3 and 4 arrive meanwhile.
    listener.push(ev(3))
    listener.push(ev(4))
    # History says: after the client's position come 2, 3 (3 is the newest kept).
    listener.replay(CH, [ev(2), ev(3)], ("ep1", (1000, 3)))
    # Later live duplicates of replayed events are dropped on arrival, newer ones kept.
    listener.push(ev(3))
    listener.push(ev(5))
    assert ns(await listener.next_batch()) == [2, 3, 4, 5]


async def test_seam_keeps_live_events_of_another_epoch_or_channel() -> None:
    listener = Listener([CH, OTHER], maxsize=100)
    listener.push(ev(1, epoch="new"))  # history restarted: same ids, other epoch
    listener.push(ev(1, channel=OTHER))  # same id on the other channel
    listener.replay(CH, [ev(1)], ("ep1", (1000, 1)))
    got = await listener.next_batch()
    assert [(e.channel, e.epoch) for e in got if isinstance(e, Event)] == [
        (CH, "ep1"),
        (CH, "new"),
        (OTHER, "ep1"),
    ]


async def test_replay_without_events_sets_no_floor() -> None:
    listener = Listener([CH], maxsize=100)
    listener.replay(CH, [], None)
    listener.push(ev(0))
    assert ns(await listener.next_batch()) == [0]


def test_replay_into_a_closed_listener_is_ignored() -> None:
    listener = Listener([CH], maxsize=100)
    listener.close("done")
    listener.replay(CH, [ev(1)], ("ep1", (1000, 1)))
    assert listener.pending() == 0


def test_multi_channel_listener_writes_its_own_cursor_as_id() -> None:
    listener = Listener([CH, OTHER], maxsize=10)
    first = ev(1, epoch="aa", channel=CH)
    second = ev(2, epoch="bb", channel=OTHER)
    wire = listener.encode([first, PING, second]).decode()
    assert wire == (
        "id: aa.1000-1,0.0-0\n"
        + first.data.decode()
        + PING.decode()
        + "id: aa.1000-1,bb.1000-2\n"
        + second.data.decode()
    )
    assert format_cursor(listener.cursor) == "aa.1000-1,bb.1000-2"


def test_single_channel_listener_writes_event_frames() -> None:
    listener = Listener([CH], maxsize=10)
    event = ev(1)
    assert listener.encode([event, PING]) == event.frame + PING


# --- LocalHub ---


class Watcher:
    """Keeps what a hub tells its ChannelWatcher."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def channel_opened(self, channel: str) -> None:
        self.calls.append(("first", channel))

    def channel_closed(self, channel: str) -> None:
        self.calls.append(("last", channel))


class Reports:
    """Keeps what a hub tells its DeliveryCounter: (event seq, writers)."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int]] = []

    def count_event(self, event: Event, listeners: int = 1) -> None:
        self.reports.append((event.key[1], listeners))


def test_hub_subscribes_on_first_listener_and_unsubscribes_on_last() -> None:
    watcher = Watcher()
    calls = watcher.calls
    hub = LocalHub(watcher)
    listeners = [Listener([CH], 10, owner=hub) for _ in range(100)]
    for listener in listeners:
        hub.add(listener)
    assert calls == [("first", CH)]
    assert hub.count() == 100
    for listener in listeners[:-1]:
        hub.remove(listener)
    assert calls == [("first", CH)]
    hub.remove(listeners[-1])
    hub.remove(listeners[-1])  # twice is harmless
    assert calls == [("first", CH), ("last", CH)]
    assert hub.registry() == {}


def test_a_listener_joins_only_the_hub_it_was_made_for() -> None:
    hub, other = LocalHub(), LocalHub()
    with pytest.raises(ValueError, match="owner=hub"):
        hub.add(Listener([CH], 10, owner=other))
    with pytest.raises(ValueError, match="owner=hub"):
        hub.add(Listener([CH], 10))


def test_hub_dispatch_reaches_every_listener_of_the_channel_only() -> None:
    hub = LocalHub()
    mine, theirs = Listener([CH], 10, owner=hub), Listener([OTHER], 10, owner=hub)
    both = Listener([CH, OTHER], 10, owner=hub)
    for listener in (mine, theirs, both):
        hub.add(listener)
    assert hub.dispatch(ev(1)) == 2
    assert (mine.pending(), theirs.pending(), both.pending()) == (1, 0, 1)
    assert hub.dispatch(ev(1, channel="sse:session:nobody")) == 0


async def test_hub_reports_how_many_writers_wrote_an_event_at_once() -> None:
    counter = Reports()
    reports = counter.reports
    hub = LocalHub(counter=counter)
    written: list[Event | bytes] = []

    def writer(item: Event | bytes) -> bool:
        written.append(item)
        return True

    def refusing(item: Event | bytes) -> bool:
        return False  # a full socket: the item waits in the buffer

    taking, full, plain = (Listener([CH], 10, owner=hub) for _ in range(3))
    taking.consume(writer)
    full.consume(refusing)
    waiting = [asyncio.create_task(ls.next_batch()) for ls in (taking, full, plain)]
    for listener in (taking, full, plain):
        hub.add(listener)
    await asyncio.sleep(0)  # let the consumers park on their waiters
    assert hub.dispatch(ev(1)) == 3
    assert [item.key for item in written if isinstance(item, Event)] == [(1000, 1)]
    # One report per event, counting only what a writer took.
    assert reports == [(1, 1)]
    assert (full.pending(), plain.pending()) == (1, 1)
    hub.dispatch(ev(2, channel=OTHER))  # no listener there: nothing written, no report
    assert reports == [(1, 1)]
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


def test_hub_drops_a_slow_listener_and_keeps_the_others() -> None:
    hub = LocalHub()
    slow, fast = Listener([CH], 2, owner=hub), Listener([CH], 100, owner=hub)
    hub.add(slow)
    hub.add(fast)
    for n in range(5):
        hub.dispatch(ev(n))
    assert slow.close_reason == "slow"
    assert hub.listeners(CH) == [fast]
    assert fast.pending() == 5
    assert hub.dropped_slow == 1


def test_hub_close_all_empties_it() -> None:
    watcher = Watcher()
    hub = LocalHub(watcher)
    listeners = [Listener([CH, OTHER], 10, owner=hub) for _ in range(3)]
    for listener in listeners:
        hub.add(listener)
    hub.close_all("shutdown")
    assert all(listener.close_reason == "shutdown" for listener in listeners)
    assert hub.registry() == {}
    assert sorted(ch for kind, ch in watcher.calls if kind == "last") == sorted([CH, OTHER])
