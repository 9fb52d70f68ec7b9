"""The state machine and what only the in-memory store has (expiry on its own clock,
message ids under a stuck clock). The lifecycle, every illegal transition, the queue
and concurrent takeovers run against this store and Redis alike in
``tests/integration/sessions/test_store_contract.py`` (its memory half needs no Redis:
``pytest tests/integration/sessions -k memory``)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from infrastructure.sessions import SessionStore
from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.sessions.models import (
    ALLOWED_TRANSITIONS,
    ChatMessage,
    IllegalTransition,
    NotHolder,
    SenderRole,
    Session,
    SessionHeldByAnother,
    SessionNotFound,
    SessionStatus,
    can_transition,
    datetime_to_ms,
    ms_to_datetime,
)
from infrastructure.sessions.transitions import RELEASE_FROM, apply_transition

S = SessionStatus
T0 = 1_700_000_000_000


class ManualClock:
    """A clock that moves only when told (unlike the contract tests' ticking one)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def session_in(status: SessionStatus, agent_id: str | None = None) -> Session:
    at = ms_to_datetime(T0)
    return Session(
        session_name="s1",
        status=status,
        agent_id=agent_id,
        created_at=at,
        updated_at=at,
        waiting_since=at if status is S.WAITING_AGENT else None,
    )


# --- the state machine --------------------------------------------------------


def test_the_transition_table() -> None:
    assert {(a, b) for a in S for b in S if can_transition(a, b)} == {
        (S.AI, S.WAITING_AGENT),
        (S.AI, S.CLOSED),
        (S.WAITING_AGENT, S.AGENT_ACTIVE),
        (S.WAITING_AGENT, S.AI),
        (S.WAITING_AGENT, S.CLOSED),
        (S.AGENT_ACTIVE, S.AI),
        (S.AGENT_ACTIVE, S.CLOSED),
        # the desk: a gone customer leaves the queue; a gone agent's chat goes back
        (S.WAITING_AGENT, S.ABANDONED),
        (S.AGENT_ACTIVE, S.WAITING_AGENT),
        (S.ABANDONED, S.AI),
        (S.ABANDONED, S.WAITING_AGENT),
        (S.ABANDONED, S.CLOSED),
    }
    assert ALLOWED_TRANSITIONS[S.CLOSED] == frozenset()


def test_status_values_are_the_wire_values() -> None:
    assert [str(s) for s in S] == ["ai", "waiting_agent", "agent_active", "closed", "abandoned"]


@pytest.mark.parametrize(
    ("current", "requested"),
    [(a, b) for a in S for b in S if not can_transition(a, b) and not (a is b is S.AGENT_ACTIVE)],
)
def test_apply_refuses_illegal_moves(current: SessionStatus, requested: SessionStatus) -> None:
    holder = "a1" if current is S.AGENT_ACTIVE else None
    with pytest.raises(IllegalTransition) as caught:
        apply_transition(
            session_in(current, holder), requested, agent_id="a1", reason=None, now_ms=T0 + 1
        )
    message = str(caught.value)
    assert f"session 's1' is {current}" in message
    assert f"cannot move to {requested}" in message


def test_illegal_transition_message_lists_the_way_out() -> None:
    error = IllegalTransition("s1", S.AI, S.AGENT_ACTIVE)
    assert "from ai it can move to closed, waiting_agent" in str(error)
    assert "it is final" in str(IllegalTransition("s1", S.CLOSED, S.AI))


def test_apply_is_pure_and_stamps_the_time() -> None:
    before = session_in(S.AI)
    after = apply_transition(before, S.WAITING_AGENT, agent_id=None, reason="x", now_ms=T0 + 5)
    assert before.status is S.AI  # untouched
    assert after.waiting_since == after.updated_at == ms_to_datetime(T0 + 5)
    assert after.escalation_reason == "x"


def test_apply_takeover_rules() -> None:
    held = session_in(S.AGENT_ACTIVE, "a1")

    def move(session: Session, status: SessionStatus, agent_id: str | None) -> Session:
        return apply_transition(session, status, agent_id=agent_id, reason=None, now_ms=T0 + 1)

    assert move(held, S.AGENT_ACTIVE, "a1") is held
    with pytest.raises(SessionHeldByAnother) as caught:
        move(held, S.AGENT_ACTIVE, "a2")
    assert caught.value.agent_id == "a1"
    assert "held by agent 'a1'" in str(caught.value)
    with pytest.raises(NotHolder):
        move(held, S.AI, "a2")
    with pytest.raises(ValueError, match="agent_id"):
        move(session_in(S.WAITING_AGENT), S.AGENT_ACTIVE, None)


def test_only_from_narrows_the_table() -> None:
    # waiting_agent -> ai is legal (a cancel) but not as a release
    with pytest.raises(IllegalTransition):
        apply_transition(
            session_in(S.WAITING_AGENT),
            S.AI,
            agent_id="a1",
            reason=None,
            now_ms=T0,
            only_from=RELEASE_FROM,
        )


def test_time_conversions_round_trip_at_millisecond_precision() -> None:
    for ms in (0, T0, T0 + 999, 2**41 + 7):
        assert datetime_to_ms(ms_to_datetime(ms)) == ms


def test_sessions_are_immutable() -> None:
    session = session_in(S.AI)
    with pytest.raises(ValidationError):
        session.status = S.CLOSED  # type: ignore[misc]


# --- the in-memory store ------------------------------------------------------


def test_satisfies_the_protocol() -> None:
    assert isinstance(InMemorySessionStore(), SessionStore)


async def test_sessions_expire_after_their_ttl() -> None:
    clock = ManualClock()
    store = InMemorySessionStore(ttl_seconds=10, clock=clock)
    await store.create("s1")
    await store.escalate("s1")
    clock.now += 9_000
    await store.append_message(ChatMessage(session_name="s1", sender=SenderRole.BOT, content="x"))
    clock.now += 9_000  # 18 s after creation, 9 s after the last write: still alive
    assert (await store.get("s1")).status is S.WAITING_AGENT
    clock.now += 1_000
    with pytest.raises(SessionNotFound):
        await store.get("s1")
    assert await store.queue() == []
    await store.create("s1")  # the name is free again


async def test_expired_sessions_are_swept_on_create() -> None:
    clock = ManualClock()
    store = InMemorySessionStore(ttl_seconds=1, clock=clock)
    for i in range(5):
        await store.create(f"old{i}")
    clock.now += 120_000
    await store.create("new")
    assert list(store._sessions) == ["new"]


async def test_message_ids_increase_under_a_stuck_clock() -> None:
    store = InMemorySessionStore(clock=ManualClock())
    await store.create("s1")
    ids = [
        (
            await store.append_message(
                ChatMessage(session_name="s1", sender=SenderRole.BOT, content=str(i))
            )
        ).id
        for i in range(3)
    ]
    assert ids == [f"{T0}-0", f"{T0}-1", f"{T0}-2"]


async def test_concurrent_takeovers_have_exactly_one_winner() -> None:
    store = InMemorySessionStore()
    await store.create("s1")
    await store.escalate("s1")
    results = await asyncio.gather(
        *(store.takeover("s1", f"agent-{i}") for i in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, Session) for r in results) == 1
    assert sum(isinstance(r, SessionHeldByAnother) for r in results) == 19


def test_max_messages_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_messages"):
        InMemorySessionStore(max_messages=0)
