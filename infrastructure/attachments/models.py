"""What a message says of its file, and why an upload is refused (each a clear 4xx)."""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

#: Attachment ids: random, hex; never derived from what the user sent.
ATTACHMENT_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
_ID_RE: Final = re.compile(ATTACHMENT_ID_PATTERN)

#: The types accepted, as read from the bytes: content type -> what a person calls it.
ACCEPTED_TYPES: Final[dict[str, str]] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "application/pdf": "PDF",
}
ACCEPTED_DESCRIPTION: Final = "images (PNG, JPEG, GIF, WebP) and PDF files"


def is_attachment_id(value: str) -> bool:
    return bool(_ID_RE.fullmatch(value))


class Attachment(BaseModel):
    """The file a message carries (kept in the transcript and the record)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=ATTACHMENT_ID_PATTERN)
    #: The name the sender gave, cleaned (shown, and offered on download; never a path).
    filename: str
    #: From the bytes, never from the name or the upload's header.
    content_type: str
    size: int = Field(ge=1)
    #: Whether a thumbnail was made (images).
    thumbnail: bool = False


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} bytes"


class AttachmentError(Exception):
    """An upload or a download refused on purpose; ``status`` is its HTTP answer."""

    status = 400


class AttachmentMissing(AttachmentError):
    status = 400

    def __init__(self) -> None:
        super().__init__("send the file as multipart/form-data, in a field named 'file'")


class AttachmentEmpty(AttachmentError):
    status = 422

    def __init__(self) -> None:
        super().__init__("the file is empty")


class AttachmentTooLarge(AttachmentError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than {human_size(limit)}, the most accepted")
        self.limit = limit


class AttachmentTypeRefused(AttachmentError):
    status = 415

    def __init__(self) -> None:
        super().__init__(
            f"this kind of file is not accepted: only {ACCEPTED_DESCRIPTION}"
            " (judged from the file's content, not its name)"
        )


class AttachmentUnreadable(AttachmentError):
    status = 422

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"the {kind} file is incomplete or damaged ({why})")
        self.kind = kind


class AttachmentNotFound(AttachmentError, LookupError):
    status = 404

    def __init__(self, attachment_id: str) -> None:
        super().__init__(f"attachment {attachment_id!r} not found in this session")
        self.attachment_id = attachment_id
