"""The behaviour every ``SessionStore`` shares, run against memory and Redis alike
(the ``make_store`` fixture is parametrised over both)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from infrastructure.events import InvalidTarget
from infrastructure.sessions.models import (
    ALLOWED_TRANSITIONS,
    ChatMessage,
    IllegalTransition,
    NotHolder,
    SenderRole,
    Session,
    SessionExists,
    SessionHeldByAnother,
    SessionNotFound,
    SessionStatus,
    ms_to_datetime,
)
from infrastructure.sessions.store import SessionStore

from .fakes import HOLDER, OTHER, FakeClock, S, bring_to

# --- creating and reading -----------------------------------------------------


async def test_create_starts_in_ai(store: SessionStore, clock: FakeClock) -> None:
    session = await store.create("s1")
    assert session.session_name == "s1"
    assert session.status is S.AI
    assert session.agent_id is None
    assert session.waiting_since is None
    assert session.escalation_reason is None
    assert session.created_at == session.updated_at == ms_to_datetime(clock.now)
    assert await store.get("s1") == session


@pytest.mark.parametrize("status", list(S))
async def test_create_refuses_a_taken_name(store: SessionStore, status: SessionStatus) -> None:
    await bring_to(store, "s1", status)
    with pytest.raises(SessionExists):
        await store.create("s1")
    assert (await store.get("s1")).status is status


@pytest.mark.parametrize("name", ["", "a:b", "s{1}", "x*", "a" * 65, "名字"])
async def test_create_refuses_names_outside_the_pattern(store: SessionStore, name: str) -> None:
    with pytest.raises(InvalidTarget):
        await store.create(name)


async def test_unknown_session_is_not_found(store: SessionStore) -> None:
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get("nope"),
        lambda: store.escalate("nope"),
        lambda: store.cancel_wait("nope"),
        lambda: store.takeover("nope", HOLDER),
        lambda: store.release("nope", HOLDER),
        lambda: store.close("nope"),
        lambda: store.set_status("nope", S.CLOSED),
        lambda: store.messages("nope"),
        lambda: store.append_message(
            ChatMessage(session_name="nope", sender=SenderRole.CUSTOMER, content="hi")
        ),
    ]
    for operation in operations:
        with pytest.raises(SessionNotFound):
            await operation()
    assert await store.queue_position("nope") is None


async def test_exists_answers_as_get_finds(store: SessionStore) -> None:
    assert await store.exists("nope") is False
    await store.create("here")
    assert await store.exists("here") is True
    await store.close("here")
    await store.get("here")  # a closed session is still there: so says exists
    assert await store.exists("here") is True


async def test_ping(store: SessionStore) -> None:
    assert await store.ping() is True


# --- the lifecycle ------------------------------------------------------------


async def test_full_lifecycle(store: SessionStore, clock: FakeClock) -> None:
    created = await store.create("s1")

    waiting = await store.escalate("s1", "wants a refund")
    assert waiting.status is S.WAITING_AGENT
    assert waiting.waiting_since == ms_to_datetime(clock.now)
    assert waiting.updated_at == waiting.waiting_since
    assert waiting.created_at == created.created_at
    assert waiting.escalation_reason == "wants a refund"
    assert await store.queue_position("s1") == 1
    assert await store.get("s1") == waiting

    active = await store.takeover("s1", HOLDER)
    assert active.status is S.AGENT_ACTIVE
    assert active.agent_id == HOLDER
    assert active.waiting_since is None
    assert active.escalation_reason == "wants a refund"  # the agent sees why
    assert await store.queue_position("s1") is None
    assert await store.queue() == []

    back = await store.release("s1", HOLDER)
    assert back.status is S.AI
    assert back.agent_id is None
    assert back.escalation_reason is None

    await store.escalate("s1")
    await store.takeover("s1", OTHER)
    closed = await store.close("s1", OTHER)
    assert closed.status is S.CLOSED
    assert closed.agent_id is None
    assert await store.get("s1") == closed


async def test_escalate_without_reason(store: SessionStore) -> None:
    await store.create("s1")
    assert (await store.escalate("s1")).escalation_reason is None


async def test_cancel_wait_leaves_the_queue(store: SessionStore) -> None:
    await bring_to(store, "s1", S.WAITING_AGENT)
    session = await store.cancel_wait("s1")
    assert session.status is S.AI
    assert session.waiting_since is None
    assert session.escalation_reason is None
    assert await store.queue() == []


@pytest.mark.parametrize("status", [S.AI, S.WAITING_AGENT])
async def test_close_before_an_agent(store: SessionStore, status: SessionStatus) -> None:
    await bring_to(store, "s1", status)
    assert (await store.close("s1")).status is S.CLOSED
    assert await store.queue() == []


# --- illegal transitions ------------------------------------------------------

ILLEGAL_PAIRS = [
    (current, requested)
    for current in S
    for requested in S
    if requested not in ALLOWED_TRANSITIONS[current]
    # agent_active -> agent_active is a takeover: idempotent or SessionHeldByAnother
    and not (current is S.AGENT_ACTIVE and requested is S.AGENT_ACTIVE)
]


@pytest.mark.parametrize(("current", "requested"), ILLEGAL_PAIRS)
async def test_set_status_refuses_every_illegal_transition(
    store: SessionStore, current: SessionStatus, requested: SessionStatus
) -> None:
    before = await bring_to(store, "s1", current)
    with pytest.raises(IllegalTransition) as caught:
        await store.set_status("s1", requested, HOLDER)
    error = caught.value
    assert (error.session_name, error.current_status, error.requested) == ("s1", current, requested)
    assert f"is {current}" in str(error)
    assert await store.get("s1") == before  # never a silent overwrite


LEGAL_PAIRS = [(current, requested) for current in S for requested in ALLOWED_TRANSITIONS[current]]


@pytest.mark.parametrize(("current", "requested"), LEGAL_PAIRS)
async def test_set_status_allows_every_legal_transition(
    store: SessionStore, current: SessionStatus, requested: SessionStatus
) -> None:
    await bring_to(store, "s1", current)
    session = await store.set_status("s1", requested, HOLDER)
    assert session.status is requested
    assert await store.get("s1") == session
    waiting = [s.session_name for s in await store.queue()]
    assert waiting == (["s1"] if requested is S.WAITING_AGENT else [])


def _dedicated(store: SessionStore, method: str) -> Callable[[], Awaitable[Session]]:
    calls: dict[str, Callable[[], Awaitable[Session]]] = {
        "escalate": lambda: store.escalate("s1", "again"),
        "cancel_wait": lambda: store.cancel_wait("s1"),
        "takeover": lambda: store.takeover("s1", HOLDER),
        "release": lambda: store.release("s1", HOLDER),
        "close": lambda: store.close("s1", HOLDER),
        "requeue": lambda: store.requeue("s1", HOLDER),
    }
    return calls[method]


#: Which state each dedicated method starts from; every other state is illegal.
LEGAL_FROM = {
    "escalate": {S.AI, S.ABANDONED},
    "cancel_wait": {S.WAITING_AGENT},
    "takeover": {S.WAITING_AGENT, S.AGENT_ACTIVE},  # the holder again: idempotent
    "release": {S.AGENT_ACTIVE},
    "close": {S.AI, S.WAITING_AGENT, S.AGENT_ACTIVE, S.ABANDONED},
    "requeue": {S.AGENT_ACTIVE},
}


@pytest.mark.parametrize(
    ("method", "current"),
    [(m, c) for m, legal in LEGAL_FROM.items() for c in S if c not in legal],
)
async def test_dedicated_methods_refuse_illegal_states(
    store: SessionStore, method: str, current: SessionStatus
) -> None:
    before = await bring_to(store, "s1", current)
    with pytest.raises(IllegalTransition) as caught:
        await _dedicated(store, method)()
    assert caught.value.current_status is current
    assert await store.get("s1") == before


# --- holding a session --------------------------------------------------------


async def test_takeover_by_the_holder_is_idempotent(store: SessionStore) -> None:
    first = await bring_to(store, "s1", S.AGENT_ACTIVE)
    again = await store.takeover("s1", HOLDER)
    assert again == first  # not even updated_at moves


async def test_takeover_of_a_held_session_names_the_holder(store: SessionStore) -> None:
    before = await bring_to(store, "s1", S.AGENT_ACTIVE)
    with pytest.raises(SessionHeldByAnother) as caught:
        await store.takeover("s1", OTHER)
    assert caught.value.agent_id == HOLDER
    assert await store.get("s1") == before


async def test_only_the_holder_releases_or_closes(store: SessionStore) -> None:
    before = await bring_to(store, "s1", S.AGENT_ACTIVE)
    for attempt in (store.release("s1", OTHER), store.close("s1", OTHER)):
        with pytest.raises(NotHolder) as caught:
            await attempt
        assert (caught.value.agent_id, caught.value.holder) == (OTHER, HOLDER)
    assert await store.get("s1") == before


async def test_an_outside_authority_may_move_a_held_session(store: SessionStore) -> None:
    """The status callback and the customer act without an agent id."""
    await bring_to(store, "s1", S.AGENT_ACTIVE)
    assert (await store.set_status("s1", S.AI)).status is S.AI
    await bring_to(store, "s2", S.AGENT_ACTIVE)
    assert (await store.close("s2")).status is S.CLOSED


async def test_set_status_agent_active_needs_an_agent(store: SessionStore) -> None:
    before = await bring_to(store, "s1", S.WAITING_AGENT)
    with pytest.raises(ValueError, match="agent_id"):
        await store.set_status("s1", S.AGENT_ACTIVE)
    assert await store.get("s1") == before


async def test_set_status_takeover_checks_like_takeover(store: SessionStore) -> None:
    await bring_to(store, "s1", S.WAITING_AGENT)
    assert (await store.set_status("s1", S.AGENT_ACTIVE, HOLDER)).agent_id == HOLDER
    with pytest.raises(SessionHeldByAnother):
        await store.set_status("s1", S.AGENT_ACTIVE, OTHER)


async def test_set_status_to_waiting_keeps_the_reason(store: SessionStore) -> None:
    await store.create("s1")
    session = await store.set_status("s1", S.WAITING_AGENT, reason="callback")
    assert session.escalation_reason == "callback"
    assert await store.queue_position("s1") == 1


# --- the waiting queue --------------------------------------------------------


async def test_queue_is_oldest_first(store: SessionStore) -> None:
    # names in an order unlike their alphabetical one: the order is time, not name
    for name in ("s-c", "s-a", "s-b", "s-d"):
        await store.create(name)
    for name in ("s-c", "s-a", "s-b", "s-d"):
        await store.escalate(name)

    queue = await store.queue()
    assert [s.session_name for s in queue] == ["s-c", "s-a", "s-b", "s-d"]
    assert all(s.status is S.WAITING_AGENT for s in queue)
    waits = [s.waiting_since for s in queue if s.waiting_since is not None]
    assert len(waits) == 4
    assert waits == sorted(waits)
    assert [await store.queue_position(n) for n in ("s-c", "s-a", "s-b", "s-d")] == [1, 2, 3, 4]

    await store.takeover("s-a", HOLDER)
    await store.cancel_wait("s-c")
    assert [s.session_name for s in await store.queue()] == ["s-b", "s-d"]
    assert await store.queue_position("s-b") == 1
    assert await store.queue_position("s-d") == 2
    assert await store.queue_position("s-a") is None
    assert await store.queue_position("s-c") is None

    # back in the queue: at its tail, not at its old place
    await store.escalate("s-c")
    assert [s.session_name for s in await store.queue()] == ["s-b", "s-d", "s-c"]


async def test_released_session_requeues_at_the_tail(store: SessionStore) -> None:
    await bring_to(store, "first", S.AGENT_ACTIVE)
    await bring_to(store, "second", S.WAITING_AGENT)
    await store.release("first", HOLDER)
    await store.escalate("first")
    assert [s.session_name for s in await store.queue()] == ["second", "first"]
