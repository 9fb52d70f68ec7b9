"""Attachments with both services as processes: a file either way, served to the session's
customer and agents only, with safe headers; and an upload of each bad kind refused with a
clear 4xx, nothing kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import files
from tests.support.deployment import Deployment, new_chat, start_deployment, stop_deployment
from tests.support.processes import async_wait_until
from tests.support.sse_client import SseStream

pytestmark = pytest.mark.e2e

LIMIT = 200_000


@pytest.fixture(scope="module")
def deployment() -> Any:
    deployed = start_deployment(env={"ATTACHMENT_MAX_BYTES": str(LIMIT)})
    yield deployed
    stop_deployment(deployed)


def kept_files(d: Deployment) -> list[Path]:
    """Every file in the shared ATTACHMENTS_DIR (the staging folder included)."""
    root = Path(d.env["ATTACHMENTS_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_a_file_goes_both_ways_and_is_served_safely(deployment: Deployment) -> None:
    d = deployment
    hana = d.agent_headers("hana")
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await new_chat(http, d, "hana")
        token = customer["Authorization"].removeprefix("Bearer ")
        agent_stream = await SseStream(
            f"{d.workbench}/api/agents/hana/events", headers=hana
        ).start()
        stream = await SseStream(f"{d.chatbot}/api/sessions/{name}/events?token={token}").start()
        try:
            # The customer sends a photo (to the chatbot service) ...
            sent = await http.post(
                f"{d.chatbot}/api/sessions/{name}/attachments",
                files={"file": ("猫 photo.png", files.png(), "application/octet-stream")},
                headers=customer,
            )
            assert sent.status_code == 201, sent.text
            photo = sent.json()["attachment"]
            assert photo["content_type"] == "image/png"
            assert photo["filename"] == "猫 photo.png"
            assert photo["thumbnail"] is True
            # ... the agent hears of it on its own stream, and fetches it from the workbench.
            heard = await agent_stream.wait_type("new_message", session_name=name)
            assert heard.payload["attachment"] == photo
            got = await http.get(
                f"{d.workbench}/api/sessions/{name}/attachments/{photo['id']}", headers=hana
            )
            assert got.status_code == 200
            assert got.content == files.png()
            assert got.headers["content-type"] == "image/png"
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.headers["content-security-policy"].startswith("sandbox")
            assert got.headers["content-disposition"] == (
                "inline; filename=\"_ photo.png\"; filename*=UTF-8''%E7%8C%AB%20photo.png"
            )
            thumb = await http.get(
                f"{d.workbench}/api/sessions/{name}/attachments/{photo['id']}/thumbnail",
                headers=hana,
            )
            assert thumb.status_code == 200
            assert thumb.headers["content-type"] == "image/webp"
            assert len(thumb.content) < len(files.png())

            # The agent sends a PDF; the customer's stream shows it and the customer reads it.
            reply = await http.post(
                f"{d.workbench}/api/sessions/{name}/attachments",
                files={"file": ("invoice.pdf", files.pdf(), "application/pdf")},
                headers=hana,
            )
            assert reply.status_code == 201, reply.text
            invoice = reply.json()["attachment"]
            seen = await stream.wait_type("new_message", sender="agent")
            assert seen.payload["attachment"] == invoice
            # The page's way: the stream's cookie-less ?token= works as the header does.
            read = await http.get(
                f"{d.chatbot}/api/sessions/{name}/attachments/{invoice['id']}?token={token}"
            )
            assert read.status_code == 200
            assert read.content == files.pdf()
            assert read.headers["content-type"] == "application/pdf"
            assert read.headers["x-content-type-options"] == "nosniff"
            assert read.headers["content-disposition"].startswith('inline; filename="invoice.pdf"')
        finally:
            await stream.close()
            await agent_stream.close()

        # Both in the transcript, the live one and the record's.
        live = (
            await http.get(f"{d.chatbot}/api/sessions/{name}/messages", headers=customer)
        ).json()
        assert [m["attachment"] for m in live] == [photo, invoice]

        async def archived() -> httpx.Response | None:
            recorded = await http.get(f"{d.chatbot}/api/conversations/{name}", headers=customer)
            found = recorded.status_code == 200 and len(recorded.json()["messages"]) == 2
            return recorded if found else None

        recorded = await async_wait_until(archived, timeout=20, description="the record has it")
        assert isinstance(recorded, httpx.Response)
        assert [m["attachment"] for m in recorded.json()["messages"]] == [photo, invoice]

        # Someone else's: another customer, no token, a file of another chat.
        other_name, other = await new_chat(http, d, None)
        url = f"{d.chatbot}/api/sessions/{name}/attachments/{photo['id']}"
        assert (await http.get(url, headers=other)).status_code == 403
        async with httpx.AsyncClient(timeout=10) as stranger:  # no token, no cookie
            assert (await stranger.get(url)).status_code == 401
        elsewhere = f"{d.chatbot}/api/sessions/{other_name}/attachments/{photo['id']}"
        assert (await http.get(elsewhere, headers=other)).status_code == 404

        # The customer's data erased: the files go with it.
        erased = await http.delete(
            f"{d.workbench}/api/customers/{name}", headers=d.service_headers()
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["files"] == 2
        assert (await http.get(url, headers=hana)).status_code == 404
        assert not [p for p in kept_files(d) if p.name.startswith((photo["id"], invoice["id"]))]


BAD_UPLOADS = [
    ("oversized", ("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (LIMIT + 1)), 413, "larger than"),
    ("exe-named-png", ("setup.png", files.EXE), 415, "not accepted"),
    ("html-named-png", ("page.png", files.HTML), 415, "not accepted"),
    ("svg", ("logo.svg", files.SVG), 415, "not accepted"),
    ("cut-png", ("a.png", files.cut(files.png())), 422, "incomplete or damaged"),
    ("cut-jpeg", ("a.jpg", files.cut(files.jpeg())), 422, "incomplete or damaged"),
    ("cut-pdf", ("a.pdf", files.cut(files.pdf())), 422, "incomplete or damaged"),
    ("empty", ("a.png", b""), 422, "empty"),
]


@pytest.mark.parametrize(
    ("upload", "status", "says"), [b[1:] for b in BAD_UPLOADS], ids=[b[0] for b in BAD_UPLOADS]
)
async def test_a_bad_upload_is_a_clear_4xx_and_nothing_is_kept(
    deployment: Deployment, upload: tuple[str, bytes], status: int, says: str
) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await new_chat(http, d, None)
        before = kept_files(d)
        refused = await http.post(
            f"{d.chatbot}/api/sessions/{name}/attachments",
            files={"file": (upload[0], upload[1], "image/png")},
            headers=customer,
        )
        assert refused.status_code == status, refused.text
        assert says in refused.json()["detail"]
        assert kept_files(d) == before
        messages = await http.get(f"{d.chatbot}/api/sessions/{name}/messages", headers=customer)
        assert messages.json() == []


async def test_an_upload_announced_past_the_limit_is_refused_before_it_is_read(
    deployment: Deployment,
) -> None:
    """A ``Content-Length`` far past the limit: the 413 comes at once, from the headers (a
    raw socket: an HTTP client writing the body would be cut off by it mid-write)."""
    d = deployment
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await new_chat(http, d, None)
    before = kept_files(d)
    url = httpx.URL(d.chatbot)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(
            (
                f"POST /api/sessions/{name}/attachments HTTP/1.1\r\n"
                f"Host: {url.host}:{url.port}\r\n"
                f"Authorization: {customer['Authorization']}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {50 * LIMIT}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read(4096)
            while b"}" not in answer:
                more = await reader.read(4096)
                if not more:
                    break
                answer += more
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer
    assert b"the file is larger than 195 KB, the most accepted" in body
    assert kept_files(d) == before


async def test_who_may_not_send_or_how_is_refused(deployment: Deployment) -> None:
    d = deployment
    photo = {"file": ("a.png", files.png(), "image/png")}
    async with httpx.AsyncClient(timeout=10) as http:
        name, customer = await new_chat(http, d, "hana")
        other_name, other = await new_chat(http, d, None)
        before = kept_files(d)
        url = f"{d.chatbot}/api/sessions/{name}/attachments"
        # No file field, or not multipart at all.
        missing = await http.post(url, data={"note": "x"}, headers=customer)
        assert missing.status_code == 400
        assert "field named 'file'" in missing.json()["detail"]
        as_json = await http.post(url, json={"file": "x"}, headers=customer)
        assert as_json.status_code == 400
        # A customer to someone else's session.
        assert (await http.post(url, files=photo, headers=other)).status_code == 403
        # An agent who does not hold the chat.
        ali = await http.post(
            f"{d.workbench}/api/sessions/{name}/attachments",
            files=photo,
            headers=d.agent_headers("ali"),
        )
        assert ali.status_code == 403
        assert "does not hold" in ali.json()["detail"]
        # A service token is not a person in the chat.
        service = await http.post(url, files=photo, headers=d.service_headers())
        assert service.status_code == 403
        # A closed chat.
        closed = await http.post(
            f"{d.workbench}/api/sessions/{other_name}/close",
            json={"agent_id": "hana"},
            headers=d.agent_headers("hana"),
        )
        assert closed.status_code == 200, closed.text
        late = await http.post(
            f"{d.chatbot}/api/sessions/{other_name}/attachments", files=photo, headers=other
        )
        assert late.status_code == 409
        assert "closed" in late.json()["detail"]
        # A session that does not exist (an agent may name any).
        nope = await http.post(
            f"{d.workbench}/api/sessions/nope/attachments",
            files=photo,
            headers=d.agent_headers("hana"),
        )
        assert nope.status_code == 404
        assert kept_files(d) == before
