"""The attachments use case both services share: receive, check, keep, publish, serve.

Nothing is kept of a refused upload: the file is received into the store's staging
folder (at most ``ATTACHMENT_MAX_BYTES``: past that it stops reading and answers 413),
checked there, and only then moved into the store; if the message that carries it cannot
be written (the chat closed meanwhile, the agent lost it), the file is deleted again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path

from infrastructure.bus.api import SseBus
from infrastructure.sessions.models import (
    ChatMessage,
    NotHolder,
    SenderRole,
    Session,
    SessionClosed,
    SessionStatus,
)
from infrastructure.sessions.notify import publish_message
from infrastructure.sessions.store import SessionStore

from .checks import check_file, make_thumbnail, safe_filename
from .models import Attachment, AttachmentEmpty, AttachmentNotFound, AttachmentTooLarge
from .store import CHUNK_BYTES, AttachmentStore, StoredAttachment

logger = logging.getLogger(__name__)

#: ``read(n)``: the next at most ``n`` bytes of the upload, ``b""`` at its end.
Reader = Callable[[int], Awaitable[bytes]]


class AttachmentService:
    def __init__(
        self,
        files: AttachmentStore,
        bus: SseBus,
        store: SessionStore,
        max_bytes: int,
        source: str,
    ) -> None:
        self.files = files
        self.max_bytes = max_bytes
        self._bus = bus
        self._store = store
        self._source = source

    async def can_send(
        self, session_name: str, sender: SenderRole, agent_id: str | None
    ) -> Session:
        """Checked before the upload is read (and again, atomically, when its message is
        written): the session exists and is not closed; an agent holds it."""
        session = await self._store.get(session_name)
        if session.status is SessionStatus.CLOSED:
            raise SessionClosed(session_name)
        if sender is SenderRole.AGENT and (
            session.status is not SessionStatus.AGENT_ACTIVE or session.agent_id != agent_id
        ):
            raise NotHolder(session_name, agent_id or "", session.agent_id)
        return session

    async def send(
        self,
        session_name: str,
        sender: SenderRole,
        agent_id: str | None,
        filename: str | None,
        read: Reader,
    ) -> ChatMessage:
        """Keep the file and publish the message that carries it (``new_message`` with an
        ``attachment``, as any message: the session's channel and its agent's)."""
        session = await self.can_send(session_name, sender, agent_id)
        attachment = await self.keep(session_name, filename, read)
        try:
            message = await self._store.append_message(
                ChatMessage(
                    session_name=session_name,
                    sender=sender,
                    sender_id=agent_id if sender is SenderRole.AGENT else None,
                    content=attachment.filename,
                    attachment=attachment,
                )
            )
        except BaseException:
            await self.files.delete(attachment.id)
            raise
        holder = agent_id if sender is SenderRole.AGENT else session.agent_id
        await publish_message(self._bus, message, self._source, holder=holder)
        return message

    async def keep(self, session_name: str, filename: str | None, read: Reader) -> Attachment:
        """Receive, check and store one file; nothing is left behind if it is refused."""
        staging = self.files.staging_dir()
        staged = staging / uuid.uuid4().hex
        thumb = staged.with_name(staged.name + ".thumb")
        try:
            size = await self._receive(read, staged)
            checked = await asyncio.to_thread(check_file, staged)
            has_thumb = checked.image and await asyncio.to_thread(_thumbnail, staged, thumb)
            attachment = Attachment(
                id=uuid.uuid4().hex,
                filename=safe_filename(filename, checked.content_type),
                content_type=checked.content_type,
                size=size,
                thumbnail=has_thumb,
            )
            await self.files.put(
                StoredAttachment(session_name=session_name, attachment=attachment),
                staged,
                thumb if has_thumb else None,
            )
            return attachment
        finally:
            for leftover in (staged, thumb):
                with suppress(OSError):
                    leftover.unlink(missing_ok=True)

    async def _receive(self, read: Reader, target: Path) -> int:
        size = 0
        file = await asyncio.to_thread(target.open, "wb")
        try:
            while chunk := await read(CHUNK_BYTES):
                size += len(chunk)
                if size > self.max_bytes:
                    raise AttachmentTooLarge(self.max_bytes)
                await asyncio.to_thread(file.write, chunk)
        finally:
            file.close()
        if size == 0:
            raise AttachmentEmpty()
        return size

    async def fetch(
        self, session_name: str, attachment_id: str, thumbnail: bool = False
    ) -> tuple[Attachment, AsyncIterator[bytes]]:
        """The file (or its thumbnail) of a message of ``session_name``; a file of another
        session is not found, as one that does not exist."""
        stored = await self.files.meta(attachment_id)
        if stored.session_name != session_name or (thumbnail and not stored.attachment.thumbnail):
            raise AttachmentNotFound(attachment_id)
        return stored.attachment, self.files.open(attachment_id, thumbnail)

    async def erase(self, session_name: str, attachment_ids: set[str]) -> int:
        """Delete the session's files among ``attachment_ids`` (a customer's data erased);
        how many there were."""
        erased = 0
        for attachment_id in sorted(attachment_ids):
            try:
                stored = await self.files.meta(attachment_id)
            except AttachmentNotFound:
                continue
            if stored.session_name == session_name and await self.files.delete(attachment_id):
                erased += 1
        return erased


def _thumbnail(source: Path, target: Path) -> bool:
    """A thumbnail of a checked image; an image Pillow can check but not shrink is kept
    without one (the pages then show the file as a chip)."""
    try:
        make_thumbnail(source, target)
    except Exception:
        logger.warning("no thumbnail for an accepted image", exc_info=True)
        return False
    return True
