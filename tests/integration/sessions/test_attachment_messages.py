"""A file's message in the session store, memory and Redis alike: kept with its attachment
in the transcript and the record stream; never added to a closed chat."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from infrastructure.attachments.models import Attachment
from infrastructure.config import Settings
from infrastructure.sessions.models import ChatMessage, SenderRole, SessionClosed
from infrastructure.sessions.redis_store import RedisSessionStore
from infrastructure.sessions.store import SessionStore

FILE = Attachment(
    id="0123456789abcdef0123456789abcdef",
    filename="cat.png",
    content_type="image/png",
    size=1234,
    thumbnail=True,
)


def _file_message(name: str) -> ChatMessage:
    return ChatMessage(
        session_name=name, sender=SenderRole.CUSTOMER, content=FILE.filename, attachment=FILE
    )


async def test_a_file_message_reads_back_with_its_attachment(store: SessionStore) -> None:
    await store.create("s1")
    sent = await store.append_message(_file_message("s1"))
    plain = await store.append_message(
        ChatMessage(session_name="s1", sender=SenderRole.CUSTOMER, content="and a text")
    )
    assert sent.attachment == FILE
    assert await store.messages("s1") == [sent, plain]
    assert plain.attachment is None


async def test_no_file_is_added_to_a_closed_chat(store: SessionStore) -> None:
    await store.create("s1")
    await store.close("s1")
    with pytest.raises(SessionClosed, match="closed"):
        await store.append_message(_file_message("s1"))
    assert await store.messages("s1") == []


async def test_the_record_stream_has_the_attachment(
    redis_client: aioredis.Redis, redis_settings: Settings
) -> None:
    store = RedisSessionStore(redis_client, redis_settings)
    await store.create("s1")
    sent = await store.append_message(_file_message("s1"))
    entries = await redis_client.xrange(store.keys.record)
    assert entries
    _, raw = entries[-1]
    last = {_text(k): _text(v) for k, v in (raw or {}).items()}
    assert last["kind"] == "message"
    assert last["message_id"] == sent.id
    assert Attachment.model_validate_json(last["attachment"]) == FILE


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
