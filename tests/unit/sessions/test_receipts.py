"""Read receipts on the in-memory twins: the other side is told when a side's mark moves
forward, and a receipt that arrives after a newer one tells nobody ("Seen" never goes back)."""

from __future__ import annotations

import pytest

from infrastructure.events import Target
from infrastructure.sessions import NotHolder
from infrastructure.sessions.models import is_newer
from infrastructure.sessions.receipts import read_receipt
from tests.support.twins import published, twins


async def test_a_newer_receipt_is_told_and_a_late_older_one_is_not() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        customer = await t.follow(Target.session("s1"))
        alice = await t.follow(Target.agent("alice"))
        await read_receipt(t.bus, t.store, "s1", None, "100-2")
        await read_receipt(t.bus, t.store, "s1", None, "100-1")  # sent before, arrived after
        read = {"session_name": "s1", "reader": "customer", "up_to": "100-2"}
        assert await published(customer) == [("read", read)]
        assert await published(alice) == [("read", read)]
        session = await read_receipt(t.bus, t.store, "s1", "alice", "101-0")
        assert (session.agent_read_up_to, session.customer_read_up_to) == ("101-0", "100-2")
        assert [p["reader"] for _, p in await published(customer)] == ["agent"]


async def test_a_receipt_without_a_message_only_clears_the_agents_unread() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        alice = await t.follow(Target.agent("alice"))
        session = await read_receipt(t.bus, t.store, "s1", "alice", None)
        assert session.unread == 0
        assert await published(alice) == []


async def test_only_the_holder_sends_an_agents_receipt() -> None:
    async with twins() as t:
        await t.held_by("s1", "alice")
        with pytest.raises(NotHolder):
            await read_receipt(t.bus, t.store, "s1", "bob", "100-0")


@pytest.mark.parametrize(
    ("candidate", "current", "newer"),
    [
        ("5-0", None, True),
        ("5-1", "5-0", True),
        ("5-0", "5-0", False),
        ("4-9", "5-0", False),
        ("10-0", "9-99", True),  # as numbers, not as text
        ("100000000000000000001-0", "100000000000000000000-7", True),
    ],
)
def test_is_newer_compares_ids_as_numbers(candidate: str, current: str | None, newer: bool) -> None:
    assert is_newer(candidate, current) is newer
