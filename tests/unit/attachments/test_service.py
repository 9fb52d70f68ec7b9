"""The attachments use case on the in-memory twins: what is kept, published and recorded,
and that a refused upload leaves nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.attachments.models import (
    AttachmentEmpty,
    AttachmentNotFound,
    AttachmentTooLarge,
    AttachmentTypeRefused,
    AttachmentUnreadable,
)
from infrastructure.attachments.service import AttachmentService
from infrastructure.attachments.store import MemoryAttachmentStore
from infrastructure.events import Target
from infrastructure.sessions import ChatMessage, NotHolder, SenderRole, SessionNotFound
from infrastructure.sessions.models import SessionClosed
from infrastructure.sessions.record_log import RecordLog
from tests.support import files
from tests.support.twins import Twins, published, twins

LIMIT = 100_000


@dataclass
class World:
    twins: Twins
    files: MemoryAttachmentStore
    service: AttachmentService
    staging: Path


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with twins() as t:
        t.store.record = RecordLog()
        store = MemoryAttachmentStore(tmp_path / "staging")
        service = AttachmentService(store, t.bus, t.store, LIMIT, "tests")
        yield World(t, store, service, tmp_path / "staging")


def reader(data: bytes, chunk: int = 7000) -> Callable[[int], Awaitable[bytes]]:
    """An upload as the route reads it: at most ``n`` bytes a call, then ``b""``."""
    sent = 0

    async def read(n: int) -> bytes:
        nonlocal sent
        piece = data[sent : sent + min(n, chunk)]
        sent += len(piece)
        return piece

    return read


async def held_by(w: World, name: str, agent: str) -> None:
    await w.twins.store.create(name)
    await w.twins.store.escalate(name)
    await w.twins.store.takeover(name, agent)


def nothing_kept(w: World) -> bool:
    return not w.files.files and not (w.staging.exists() and any(w.staging.iterdir()))


async def test_a_customer_image_is_kept_published_and_recorded(world: World) -> None:
    w = world
    await held_by(w, "s1", "hana")
    listener = await w.twins.follow(Target.session("s1"), Target.agent("hana"))
    message = await w.service.send("s1", SenderRole.CUSTOMER, None, "cat.png", reader(files.png()))

    attachment = message.attachment
    assert attachment is not None
    assert (attachment.filename, attachment.content_type, attachment.thumbnail) == (
        "cat.png",
        "image/png",
        True,
    )
    assert attachment.size == len(files.png())
    assert message.content == "cat.png"
    # In the transcript, as it was stored.
    assert (await w.twins.store.messages("s1"))[-1] == message
    # On the session's channel and the holder's, as any message.
    events = await published(listener)
    sent = [p for t, p in events if t == "new_message"]
    assert len(sent) == 2
    assert all(p["attachment"] == attachment.model_dump() for p in sent)
    # In the record.
    assert w.twins.store.record is not None
    entry = w.twins.store.record.read(100)[-1]
    assert entry.kind == "message"
    assert entry.get("attachment") == attachment.model_dump_json()
    # Served back, to this session only.
    got, body = await w.service.fetch("s1", attachment.id)
    assert got == attachment
    assert b"".join([c async for c in body]) == files.png()
    _, thumb = await w.service.fetch("s1", attachment.id, thumbnail=True)
    assert (b"".join([c async for c in thumb]))[8:12] == b"WEBP"
    with pytest.raises(AttachmentNotFound):
        await w.service.fetch("s2", attachment.id)
    assert not any(w.staging.iterdir())


async def test_an_agent_pdf_has_no_thumbnail(world: World) -> None:
    w = world
    await held_by(w, "s1", "hana")
    message = await w.service.send("s1", SenderRole.AGENT, "hana", "invoice", reader(files.pdf()))
    assert message.attachment is not None
    assert message.attachment.filename == "invoice.pdf"
    assert message.attachment.thumbnail is False
    assert message.sender_id == "hana"
    with pytest.raises(AttachmentNotFound):
        await w.service.fetch("s1", message.attachment.id, thumbnail=True)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00" * (LIMIT + 1), AttachmentTooLarge),
        (files.EXE, AttachmentTypeRefused),
        (files.HTML, AttachmentTypeRefused),
        (files.cut(files.png()), AttachmentUnreadable),
        (files.cut(files.jpeg()), AttachmentUnreadable),
        (files.cut(files.pdf()), AttachmentUnreadable),
        (b"", AttachmentEmpty),
    ],
    ids=["oversized", "exe", "html", "cut-png", "cut-jpeg", "cut-pdf", "empty"],
)
async def test_a_bad_upload_is_refused_and_nothing_is_kept(
    world: World, data: bytes, error: type[Exception]
) -> None:
    w = world
    await w.twins.store.create("s1")
    listener = await w.twins.follow(Target.session("s1"))
    with pytest.raises(error):
        await w.service.send("s1", SenderRole.CUSTOMER, None, "x.png", reader(data))
    assert nothing_kept(w)
    assert await w.twins.store.messages("s1") == []
    assert await published(listener) == []


async def test_an_oversized_upload_stops_being_read_at_the_limit(world: World) -> None:
    w = world
    await w.twins.store.create("s1")
    asked = 0
    endless = reader(b"\x89PNG" + b"\x00" * (50 * LIMIT), chunk=1000)

    async def counting(n: int) -> bytes:
        nonlocal asked
        piece = await endless(n)
        asked += len(piece)
        return piece

    with pytest.raises(AttachmentTooLarge, match="larger than 97 KB"):
        await w.service.send("s1", SenderRole.CUSTOMER, None, "big.png", counting)
    assert asked <= LIMIT + 1000
    assert nothing_kept(w)


async def test_who_may_not_send_is_refused_before_anything_is_read(world: World) -> None:
    w = world
    await held_by(w, "s1", "hana")
    await w.twins.store.create("s2")
    await w.twins.store.close("s2")

    async def never(_: int) -> bytes:
        raise AssertionError("the upload was read")

    with pytest.raises(NotHolder):  # an agent who does not hold the chat
        await w.service.send("s1", SenderRole.AGENT, "ali", "a.png", never)
    with pytest.raises(SessionClosed, match="closed"):
        await w.service.send("s2", SenderRole.CUSTOMER, None, "a.png", never)
    with pytest.raises(SessionNotFound):
        await w.service.send("nope", SenderRole.CUSTOMER, None, "a.png", never)
    assert nothing_kept(w)


async def test_a_chat_closed_while_the_file_came_in_keeps_nothing(world: World) -> None:
    w = world
    await w.twins.store.create("s1")
    data, sent = files.png(), 0

    async def closing_midway(n: int) -> bytes:
        nonlocal sent
        if sent == 0:
            await w.twins.store.close("s1")
        piece = data[sent : sent + n]
        sent += len(piece)
        return piece

    with pytest.raises(SessionClosed):
        await w.service.send("s1", SenderRole.CUSTOMER, None, "a.png", closing_midway)
    assert nothing_kept(w)


async def test_the_store_twin_refuses_a_file_to_a_closed_chat(world: World) -> None:
    w = world
    await w.twins.store.create("s1")
    await w.twins.store.close("s1")
    kept = await w.service.keep("s1", "a.pdf", reader(files.pdf()))
    with pytest.raises(SessionClosed):
        await w.twins.store.append_message(
            ChatMessage(
                session_name="s1", sender=SenderRole.CUSTOMER, content="a.pdf", attachment=kept
            )
        )
    assert await w.twins.store.messages("s1") == []
