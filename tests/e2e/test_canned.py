"""Canned replies over HTTP (agents only), kept in the record's database."""

from __future__ import annotations

import httpx
import pytest

from infrastructure.auth.tokens import Role
from tests.support.deployment import Deployment

pytestmark = pytest.mark.e2e


async def test_canned_replies_crud_and_bad_input(deployment: Deployment) -> None:
    d = deployment
    url = f"{d.workbench}/api/canned-replies"
    alice = d.agent_headers("alice")
    customer = {"Authorization": f"Bearer {d.token(Role.CUSTOMER, 'someone')}"}
    async with httpx.AsyncClient(timeout=10) as http:
        made = await http.post(
            url, json={"shortcut": "refund", "content": "Hi {customer_name}"}, headers=alice
        )
        assert made.status_code == 201, made.text
        reply = made.json()
        assert (reply["shortcut"], reply["created_by"]) == ("refund", "alice")
        again = await http.post(url, json={"shortcut": "refund", "content": "x"}, headers=alice)
        assert again.status_code == 409
        for bad in ({"shortcut": "Bad Key", "content": "x"}, {"shortcut": "ok", "content": ""}):
            assert (await http.post(url, json=bad, headers=alice)).status_code == 422
        assert (await http.get(url, params={"q": "%"}, headers=alice)).status_code == 422
        assert (await http.get(url, headers=customer)).status_code == 403
        assert (await http.get(url)).status_code == 401
        listed = (await http.get(url, params={"q": "ref"}, headers=alice)).json()
        assert [r["shortcut"] for r in listed] == ["refund"]
        changed = await http.put(
            f"{url}/{reply['id']}", json={"shortcut": "refunds", "content": "New"}, headers=alice
        )
        assert changed.json()["shortcut"] == "refunds"
        assert (await http.delete(f"{url}/{reply['id']}", headers=alice)).status_code == 204
        assert (await http.delete(f"{url}/{reply['id']}", headers=alice)).status_code == 404
        assert (await http.get(url, params={"q": "refund"}, headers=alice)).json() == []


async def test_an_id_out_of_range_is_a_422(deployment: Deployment) -> None:
    url = f"{deployment.workbench}/api/canned-replies/801214468503775318376448"
    alice = deployment.agent_headers("alice")
    async with httpx.AsyncClient(timeout=10) as http:
        changed = await http.put(url, json={"shortcut": "x", "content": "y"}, headers=alice)
        removed = await http.delete(url, headers=alice)
    assert (changed.status_code, removed.status_code) == (422, 422)
