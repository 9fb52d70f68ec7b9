"""The supervisor's use cases on the in-memory twins: the role in the token, the overview,
the forced takeover and what each side hears of it, a whisper (a note) to the holder."""

from __future__ import annotations

import jwt
import pytest
from fastapi import HTTPException

from infrastructure.auth.dependencies import SUPERVISOR_DETAIL, require_supervisor
from infrastructure.auth.passwords import hash_password
from infrastructure.auth.tokens import (
    SUPERVISOR_SCOPE,
    InvalidToken,
    Principal,
    Role,
    issue_token,
    verify_token,
)
from infrastructure.events import Target
from infrastructure.sessions import NotHolder, SessionStatus
from infrastructure.sessions.models import NotTakeable
from products.agent_workbench.handlers.agents import login, roles_of
from products.agent_workbench.handlers.sessions import add_note, agent_message, takeover
from products.agent_workbench.handlers.supervisor import (
    overview,
    supervisor_targets,
    take_over,
)
from tests.support.auth import make_settings
from tests.support.twins import published, twins


def test_supervisors_are_a_setting_comma_separated_or_json() -> None:
    assert make_settings(SUPERVISORS="lead, ana").SUPERVISORS == ["lead", "ana"]
    assert make_settings(SUPERVISORS='["lead"]').SUPERVISORS == ["lead"]
    assert make_settings().SUPERVISORS == []
    with pytest.raises(ValueError, match="invalid supervisor id"):
        make_settings(SUPERVISORS="a:b")


async def test_a_supervisors_token_carries_the_scope_a_plain_agents_does_not() -> None:
    accounts = {"lead": hash_password("pw-lead"), "ann": hash_password("pw-ann")}
    settings = make_settings(AGENTS=accounts, SUPERVISORS="lead")
    lead = verify_token(settings, await login(settings, "lead", "pw-lead"))
    ann = verify_token(settings, await login(settings, "ann", "pw-ann"))
    assert lead.scopes == frozenset({SUPERVISOR_SCOPE})
    assert ann.scopes == frozenset()
    assert roles_of(settings, "lead") == ["supervisor"]
    assert require_supervisor(settings, lead) is lead
    with pytest.raises(HTTPException) as refused:
        require_supervisor(settings, ann)
    assert (refused.value.status_code, refused.value.detail) == (403, SUPERVISOR_DETAIL)
    # Dropped from SUPERVISORS: the token's scope alone is not enough.
    with pytest.raises(HTTPException):
        require_supervisor(make_settings(AGENTS=accounts), lead)


def test_only_known_scopes_on_agents_tokens_verify() -> None:
    settings = make_settings()
    with pytest.raises(ValueError, match="only an agent"):
        issue_token(settings, Role.CUSTOMER, "s1", scopes=[SUPERVISOR_SCOPE])
    with pytest.raises(ValueError, match="unknown scope"):
        issue_token(settings, Role.AGENT, "a1", scopes=["admin"])
    customer = Principal(Role.CUSTOMER, "lead", "j", frozenset({SUPERVISOR_SCOPE}))
    with pytest.raises(HTTPException):
        require_supervisor(make_settings(SUPERVISORS="lead"), customer)
    forged = jwt.encode(
        {"sub": "a1", "role": "agent", "iat": 1, "exp": 2**40, "jti": "x", "scope": "admin"},
        settings.AUTH_SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="bad scope"):
        verify_token(settings, forged)


def test_the_supervisors_stream_follows_the_broadcast_and_every_agent() -> None:
    settings = make_settings(
        AGENTS={"b": hash_password("x"), "a": hash_password("y")}, SUPERVISORS="lead"
    )
    assert supervisor_targets(settings) == [
        Target.broadcast(),
        Target.agent("a"),
        Target.agent("b"),
        Target.agent("lead"),
    ]


async def test_the_overview_shows_agents_the_queue_with_waits_and_active_chats() -> None:
    async with twins(SUPERVISORS="lead") as t:
        await t.desk.desk.enter("agent", ["ann", "lead"])
        await t.waiting("w1", "w2", "held")
        await takeover(t.desk, "held", "ann")
        view = await overview(t.desk)
        agents = {a["agent_id"]: a for a in view["agents"]}
        assert agents["ann"] == {
            "agent_id": "ann",
            "status": "online",
            "chats": 1,
            "capacity": 3,
            "supervisor": False,
        }
        assert agents["lead"]["supervisor"] is True
        assert [(q["session_name"], q["queue_position"]) for q in view["queue"]] == [
            ("w1", 1),
            ("w2", 2),
        ]
        assert all(q["waited_seconds"] >= 0 and q["waiting_since"] for q in view["queue"])
        (chat,) = view["chats"]
        assert (chat["session_name"], chat["agent_id"]) == ("held", "ann")
        assert chat["last_activity_at"]


async def test_a_forced_takeover_moves_the_chat_and_tells_everyone() -> None:
    async with twins(SUPERVISORS="lead") as t:
        await t.waiting("s1")
        await takeover(t.desk, "s1", "ann")
        customer = await t.follow(Target.session("s1"))
        ann = await t.follow(Target.agent("ann"))
        lead = await t.follow(Target.agent("lead"))
        team = await t.follow(Target.broadcast())
        session = await take_over(t.desk, "s1", "lead", "ann")
        assert (session.status, session.agent_id) == (SessionStatus.AGENT_ACTIVE, "lead")
        assert [s.session_name for s in await t.store.held_by("lead")] == ["s1"]
        assert await t.store.held_by("ann") == []
        assert [(a.agent_id, a.chats) for a in await t.desk.desk.agents(["ann", "lead"])] == [
            ("ann", 0),
            ("lead", 1),
        ]
        ((kind, status),) = await published(customer)
        assert (kind, status["agent_id"], status["previous_status"]) == (
            "status_change",
            "lead",
            "agent_active",
        )
        (notice, (kind, _)) = await published(ann)
        assert (notice[0], notice[1]["by"], kind) == ("taken_over", "lead", "status_change")
        kinds = [(k, p.get("taken_over_from")) for k, p in await published(lead)]
        assert kinds == [("status_change", None), ("assigned", "ann")]
        # Every team list hears the loads move (status unchanged).
        loads = [(p["agent_id"], p["chats"]) for k, p in await published(team) if k == "presence"]
        assert loads == [("ann", 0), ("lead", 1)]
        # The previous holder can no longer write; the supervisor can.
        with pytest.raises(NotHolder):
            await agent_message(t.bus, t.store, "s1", "ann", "still here?")
        await agent_message(t.bus, t.store, "s1", "lead", "Hello, I am the team lead.")


async def test_a_forced_takeover_of_what_is_not_held_by_another_is_refused() -> None:
    async with twins() as t:
        await t.waiting("queued", "mine", "moved")
        await takeover(t.desk, "mine", "lead")
        await takeover(t.desk, "moved", "bob")
        with pytest.raises(NotTakeable, match="waiting_agent, not held by an agent"):
            await take_over(t.desk, "queued", "lead", None)
        with pytest.raises(NotTakeable, match="you hold it already"):
            await take_over(t.desk, "mine", "lead", None)
        with pytest.raises(NotTakeable, match="held by 'bob' now, not 'ann'"):
            await take_over(t.desk, "moved", "lead", "ann")
        assert (await t.store.get("moved")).agent_id == "bob"  # nothing changed
        assert (await t.store.get("queued")).status is SessionStatus.WAITING_AGENT


async def test_a_whisper_is_a_note_the_holder_hears_and_the_customer_never() -> None:
    async with twins() as t:
        await t.waiting("s1")
        await takeover(t.desk, "s1", "ann")
        customer = await t.follow(Target.session("s1"))
        ann = await t.follow(Target.agent("ann"))
        note = await add_note(t.bus, t.store, "s1", "lead", "Offer the refund.")
        assert note.agent_id == "lead"
        ((kind, payload),) = await published(ann)
        assert (kind, payload["agent_id"], payload["content"]) == (
            "note",
            "lead",
            "Offer the refund.",
        )
        assert await published(customer) == []
