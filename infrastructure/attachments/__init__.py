"""Attachments (issue 23): images and PDFs sent in a chat, either way.

* :mod:`.models`: what a message says of its file (``Attachment``) and the refusals;
* :mod:`.checks`: the real type from the bytes, completeness, thumbnails (Pillow);
* :mod:`.store`: where the bytes live, behind ``AttachmentStore`` (``LocalAttachmentStore``:
  a folder, ``ATTACHMENTS_DIR``; an S3-compatible store can implement the same protocol);
* :mod:`.service`: the use case both services share (receive, check, store, publish, serve).
"""

from __future__ import annotations

from .models import (
    Attachment,
    AttachmentEmpty,
    AttachmentError,
    AttachmentMissing,
    AttachmentNotFound,
    AttachmentTooLarge,
    AttachmentTypeRefused,
    AttachmentUnreadable,
)

__all__ = [
    "Attachment",
    "AttachmentEmpty",
    "AttachmentError",
    "AttachmentMissing",
    "AttachmentNotFound",
    "AttachmentTooLarge",
    "AttachmentTypeRefused",
    "AttachmentUnreadable",
]
