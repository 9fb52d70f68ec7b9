"""The desk's HTTP contract on real processes (agents pick by hand here): held chats from
the server, presence, log out handing chats back, the queue place, close and rating, and
every bad input a clear 4xx that changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.support.deployment import Deployment

pytestmark = pytest.mark.e2e


async def _waiting(
    http: httpx.AsyncClient, d: Deployment, display: str
) -> tuple[str, dict[str, str]]:
    created = (await http.post(f"{d.chatbot}/api/sessions", json={"display_name": display})).json()
    customer = {"Authorization": f"Bearer {created['token']}"}
    name = created["session_name"]
    sent = await http.post(
        f"{d.chatbot}/api/sessions/{name}/messages", json={"content": "转人工"}, headers=customer
    )
    assert sent.json()["escalated"] is True
    return name, customer


async def test_held_chats_presence_logout_and_rating(deployment: Deployment) -> None:
    d = deployment
    dana = d.agent_headers("dana")
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _waiting(http, d, "Mei")
        place = (await http.get(f"{d.chatbot}/api/sessions/{name}/queue", headers=customer)).json()
        assert place["position"] >= 1
        row = next(
            s
            for s in (await http.get(f"{d.workbench}/api/sessions", headers=dana)).json()
            if s["session_name"] == name
        )
        assert (row["display_name"], row["first_message"]) == ("Mei", "转人工")

        taken = await http.post(
            f"{d.workbench}/api/sessions/{name}/takeover", json={"agent_id": "dana"}, headers=dana
        )
        assert taken.status_code == 200
        await http.post(
            f"{d.chatbot}/api/sessions/{name}/messages",
            json={"content": "hello?"},
            headers=customer,
        )
        # A new tab asks the server: the chat, with what dana has not read.
        (mine,) = (await http.get(f"{d.workbench}/api/agents/me/sessions", headers=dana)).json()
        assert (mine["session_name"], mine["unread"]) == (name, 1)
        read = await http.post(f"{d.workbench}/api/sessions/{name}/read", headers=dana)
        assert read.json()["unread"] == 0
        assert (
            await http.get(f"{d.chatbot}/api/sessions/{name}/queue", headers=customer)
        ).json() == {
            "session_name": name,
            "position": None,
            "estimated_wait_seconds": None,
        }

        # Bad input: clear 4xx, nothing changed.
        bad_status = await http.put(
            f"{d.workbench}/api/agents/me/status", json={"status": "asleep"}, headers=dana
        )
        assert bad_status.status_code == 422
        other = await http.post(
            f"{d.workbench}/api/sessions/{name}/close",
            json={"agent_id": "erin"},
            headers=d.agent_headers("erin"),
        )
        assert other.status_code in (403, 409), other.text
        assert "erin" in other.text, other.text
        early = await http.post(
            f"{d.chatbot}/api/sessions/{name}/rating", json={"score": 5}, headers=customer
        )
        assert early.status_code == 409
        assert (await http.get(f"{d.workbench}/api/sessions/{name}", headers=dana)).json()[
            "status"
        ] == "agent_active"

        away = await http.put(
            f"{d.workbench}/api/agents/me/status", json={"status": "away"}, headers=dana
        )
        assert away.json()["agent_id"] == "dana"

        # Log out hands the chat back, to the front of the queue; the transcript keeps all.
        out = await http.post(
            f"{d.workbench}/api/agents/logout", json={"hand_back": True}, headers=dana
        )
        assert out.json() == {"handed_back": [name]}
        assert (await http.get(f"{d.chatbot}/api/sessions/{name}/queue", headers=customer)).json()[
            "position"
        ] == 1
        # Written while back in the queue: kept, and the next agent reads it.
        waiting_note = await http.post(
            f"{d.chatbot}/api/sessions/{name}/messages",
            json={"content": "still waiting"},
            headers=customer,
        )
        assert waiting_note.status_code == 201
        transcript = (
            await http.get(f"{d.chatbot}/api/sessions/{name}/messages", headers=customer)
        ).json()
        assert [m["content"] for m in transcript if m["sender"] == "customer"] == [
            "转人工",
            "hello?",
            "still waiting",
        ]
        assert transcript[-2]["sender"] == "system"

        listed = {
            a["agent_id"]: a
            for a in (await http.get(f"{d.workbench}/api/agents", headers=dana)).json()
        }
        assert listed["dana"]["status"] == "offline"
        assert listed["dana"]["chats"] == 0

        # Close, then one rating.
        await http.post(
            f"{d.workbench}/api/sessions/{name}/takeover", json={"agent_id": "dana"}, headers=dana
        )
        closed = await http.post(
            f"{d.workbench}/api/sessions/{name}/close", json={"agent_id": "dana"}, headers=dana
        )
        assert closed.json()["status"] == "closed"
        for score in (0, 6):
            bad = await http.post(
                f"{d.chatbot}/api/sessions/{name}/rating", json={"score": score}, headers=customer
            )
            assert bad.status_code == 422
        by_agent = await http.post(
            f"{d.chatbot}/api/sessions/{name}/rating", json={"score": 4}, headers=dana
        )
        assert by_agent.status_code == 403
        stranger_name, stranger = await _waiting(http, d, "Other")
        elsewhere = await http.post(
            f"{d.chatbot}/api/sessions/{name}/rating", json={"score": 4}, headers=stranger
        )
        assert elsewhere.status_code == 403
        rated = await http.post(
            f"{d.chatbot}/api/sessions/{name}/rating",
            json={"score": 4, "comment": "quick"},
            headers=customer,
        )
        assert rated.status_code == 201
        assert (rated.json()["rating"], rated.json()["rating_comment"]) == (4, "quick")
        again = await http.post(
            f"{d.chatbot}/api/sessions/{name}/rating", json={"score": 1}, headers=customer
        )
        assert again.status_code == 409
        assert (await http.get(f"{d.workbench}/api/sessions/{name}", headers=dana)).json()[
            "rating"
        ] == 4
        assert stranger_name != name


async def test_transfer_refusals_and_back_to_the_queue(deployment: Deployment) -> None:
    d = deployment
    fay = d.agent_headers("fay")
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await _waiting(http, d, "Noor")
        taken = await http.post(
            f"{d.workbench}/api/sessions/{name}/takeover", json={"agent_id": "fay"}, headers=fay
        )
        assert taken.status_code == 200
        nobody = await http.post(
            f"{d.workbench}/api/sessions/{name}/transfer",
            json={"to_agent_id": "gus", "note": "x"},
            headers=fay,
        )
        assert nobody.status_code == 409
        assert "'gus' is offline" in nobody.json()["detail"]
        myself = await http.post(
            f"{d.workbench}/api/sessions/{name}/transfer", json={"to_agent_id": "fay"}, headers=fay
        )
        assert myself.status_code == 422
        stranger = await http.post(
            f"{d.workbench}/api/sessions/{name}/transfer",
            json={"to_agent_id": "fay"},
            headers=d.agent_headers("gus"),
        )
        assert stranger.status_code == 403  # not the holder
        bad = await http.post(
            f"{d.workbench}/api/sessions/{name}/transfer",
            json={"to_agent_id": "no such:agent"},
            headers=fay,
        )
        assert bad.status_code == 422
        assert (await http.get(f"{d.workbench}/api/sessions/{name}", headers=fay)).json()[
            "agent_id"
        ] == "fay"
        back = await http.post(f"{d.workbench}/api/sessions/{name}/transfer", json={}, headers=fay)
        assert back.status_code == 200
        assert (back.json()["status"], back.json()["queue_position"]) == ("waiting_agent", 1)
        transcript = (
            await http.get(f"{d.chatbot}/api/sessions/{name}/messages", headers=customer)
        ).json()
        assert transcript[-1]["sender"] == "system"
        assert "You are number 1 in the queue" in transcript[-1]["content"]
