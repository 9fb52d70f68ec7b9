"""Where attachments' bytes live: a small interface, and a folder that implements it.

An S3-compatible store can implement :class:`AttachmentStore` the same way (``put``
uploads the two staged files and then the metadata object; ``open`` streams the object).
Files are named by the attachment's random id, never by what the sender called them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .models import Attachment, AttachmentNotFound, is_attachment_id

CHUNK_BYTES: Final = 64 * 1024


class StoredAttachment(BaseModel):
    """An attachment and the session it belongs to (only that session's people read it)."""

    model_config = ConfigDict(frozen=True)

    session_name: str
    attachment: Attachment


@runtime_checkable
class AttachmentStore(Protocol):
    def staging_dir(self) -> Path:
        """A local folder for an upload while it is received and checked (for a folder
        store: on the same file system, so that ``put`` is a rename)."""
        ...

    async def put(self, stored: StoredAttachment, original: Path, thumbnail: Path | None) -> None:
        """Keep the checked file (and its thumbnail): the staged files are moved away. All
        or nothing: until ``put`` returns, ``meta`` does not find it."""
        ...

    async def meta(self, attachment_id: str) -> StoredAttachment:
        """``AttachmentNotFound`` when there is none."""
        ...

    def open(self, attachment_id: str, thumbnail: bool = False) -> AsyncIterator[bytes]:
        """The bytes, in chunks."""
        ...

    async def delete(self, attachment_id: str) -> bool:
        """Whether there was one."""
        ...


class LocalAttachmentStore:
    """A folder (``ATTACHMENTS_DIR``) that every replica of both services shares::

    <dir>/<id[:2]>/<id>            the file
    <dir>/<id[:2]>/<id>.thumb      its thumbnail (images)
    <dir>/<id[:2]>/<id>.json       what it is, and whose (written last: it makes it exist)
    <dir>/.staging/                uploads being received and checked
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def staging_dir(self) -> Path:
        staging = self.directory / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    def _paths(self, attachment_id: str) -> tuple[Path, Path, Path]:
        if not is_attachment_id(attachment_id):
            raise AttachmentNotFound(attachment_id)
        base = self.directory / attachment_id[:2] / attachment_id
        return base, base.with_suffix(".thumb"), base.with_suffix(".json")

    async def put(self, stored: StoredAttachment, original: Path, thumbnail: Path | None) -> None:
        await asyncio.to_thread(self._put, stored, original, thumbnail)

    def _put(self, stored: StoredAttachment, original: Path, thumbnail: Path | None) -> None:
        path, thumb_path, meta_path = self._paths(stored.attachment.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(original, path)
            if thumbnail is not None:
                os.replace(thumbnail, thumb_path)
            staged_meta = self.staging_dir() / f"{uuid.uuid4().hex}.json"
            staged_meta.write_text(stored.model_dump_json(), encoding="utf-8")
            os.replace(staged_meta, meta_path)  # atomic: now it exists, whole
        except BaseException:
            self._remove(stored.attachment.id)
            raise

    async def meta(self, attachment_id: str) -> StoredAttachment:
        _, _, meta_path = self._paths(attachment_id)
        try:
            raw = await asyncio.to_thread(meta_path.read_bytes)
        except FileNotFoundError:
            raise AttachmentNotFound(attachment_id) from None
        return StoredAttachment.model_validate_json(raw)

    async def open(self, attachment_id: str, thumbnail: bool = False) -> AsyncIterator[bytes]:
        path, thumb_path, _ = self._paths(attachment_id)
        try:
            file = await asyncio.to_thread((thumb_path if thumbnail else path).open, "rb")
        except FileNotFoundError:
            raise AttachmentNotFound(attachment_id) from None
        try:
            while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                yield chunk
        finally:
            file.close()

    async def delete(self, attachment_id: str) -> bool:
        return await asyncio.to_thread(self._remove, attachment_id)

    def _remove(self, attachment_id: str) -> bool:
        path, thumb_path, meta_path = self._paths(attachment_id)
        found = meta_path.exists()
        for doomed in (meta_path, thumb_path, path):  # the metadata first: gone at once
            doomed.unlink(missing_ok=True)
        return found


class MemoryAttachmentStore:
    """The in-memory twin (unit tests): the same contract, the bytes in a dict. It still
    stages on disk, as uploads are checked from a file."""

    def __init__(self, staging: Path) -> None:
        self._staging = staging
        self.files: dict[str, tuple[StoredAttachment, bytes, bytes | None]] = {}

    def staging_dir(self) -> Path:
        self._staging.mkdir(parents=True, exist_ok=True)
        return self._staging

    async def put(self, stored: StoredAttachment, original: Path, thumbnail: Path | None) -> None:
        data, thumb = await asyncio.to_thread(_take, original, thumbnail)
        self.files[stored.attachment.id] = (stored, data, thumb)

    async def meta(self, attachment_id: str) -> StoredAttachment:
        if attachment_id not in self.files:
            raise AttachmentNotFound(attachment_id)
        return self.files[attachment_id][0]

    async def open(self, attachment_id: str, thumbnail: bool = False) -> AsyncIterator[bytes]:
        if attachment_id not in self.files:
            raise AttachmentNotFound(attachment_id)
        _, data, thumb = self.files[attachment_id]
        body = thumb if thumbnail else data
        if body is None:
            raise AttachmentNotFound(attachment_id)
        for at in range(0, len(body), CHUNK_BYTES):
            yield body[at : at + CHUNK_BYTES]

    async def delete(self, attachment_id: str) -> bool:
        return self.files.pop(attachment_id, None) is not None


def _take(original: Path, thumbnail: Path | None) -> tuple[bytes, bytes | None]:
    data = original.read_bytes()
    original.unlink()
    if thumbnail is None:
        return data, None
    thumb = thumbnail.read_bytes()
    thumbnail.unlink()
    return data, thumb
