"""Attachments (issue 23), served by both services: send a file, fetch it, its thumbnail.

Sending: ``Authorization: Bearer`` only (the session's customer, or the agent holding the
chat), as every request that changes something. Fetching also accepts the page's HttpOnly
``SameSite=Strict`` cookie and ``?token=``, as the streams do: an ``<img src>`` cannot
send a header, and a read-only GET is safe with a cookie no other site's page can send.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from infrastructure.attachments.models import (
    ATTACHMENT_ID_PATTERN,
    Attachment,
    AttachmentError,
    AttachmentMissing,
    human_size,
)
from infrastructure.attachments.service import AttachmentService
from infrastructure.auth.dependencies import (
    SessionAccess,
    SessionNamePath,
    SessionStreamAccess,
    require_role,
)
from infrastructure.auth.rate_limit import RateLimitedPrincipal
from infrastructure.auth.tokens import AGENT_ROLE, CUSTOMER_ROLE
from infrastructure.sessions import SenderRole
from infrastructure.web.body_limit import BodyAllowance
from infrastructure.web.models import MessagePublic

router = APIRouter(tags=["attachments"])

UPLOAD_SUFFIX: Final = "/attachments"
#: What a multipart body adds to its file: boundaries, part headers, a long file name.
MULTIPART_OVERHEAD: Final = 64 * 1024
_THUMBNAIL_TYPE: Final = "image/webp"
_INLINE_TYPES: Final = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}
)

AttachmentIdPath = Annotated[str, Path(pattern=ATTACHMENT_ID_PATTERN)]


def upload_allowance(max_bytes: int) -> BodyAllowance:
    """The body limit of the upload path (the app's ``BodyLimitMiddleware``)."""
    return BodyAllowance(
        UPLOAD_SUFFIX,
        max_bytes + MULTIPART_OVERHEAD,
        f"the file is larger than {human_size(max_bytes)}, the most accepted",
    )


async def get_attachments(request: Request) -> AttachmentService:
    service: AttachmentService = request.app.state.attachments
    return service


Attachments = Annotated[AttachmentService, Depends(get_attachments)]

_UPLOAD_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "/api/sessions/{session_name}/attachments",
    status_code=201,
    response_model=MessagePublic,
    openapi_extra=_UPLOAD_BODY,
    responses={
        400: {"description": "no file in a multipart field named 'file'"},
        403: {"description": "not this session's customer, or an agent not holding the chat"},
        409: {"description": "the chat is closed"},
        413: {"description": "larger than ATTACHMENT_MAX_BYTES"},
        415: {"description": "not an image (PNG, JPEG, GIF, WebP) or a PDF, by its bytes"},
        422: {"description": "empty, cut short or damaged"},
        429: {"description": "too many messages (a file counts as one)"},
    },
)
async def upload(
    request: Request,
    session_name: SessionNamePath,
    principal: SessionAccess,
    _: RateLimitedPrincipal,
    files: Attachments,
) -> MessagePublic:
    """Send a file (multipart, field ``file``): kept, then a ``new_message`` with an
    ``attachment`` on the session's channel (and its agent's). A file is a message: it
    counts against ``RATE_LIMIT_PER_MINUTE`` like one."""
    require_role(principal, CUSTOMER_ROLE, AGENT_ROLE)
    sender = SenderRole.AGENT if principal.role is AGENT_ROLE else SenderRole.CUSTOMER
    agent_id = principal.subject if sender is SenderRole.AGENT else None
    # Before the body is read: a refusal costs no upload.
    await files.can_send(session_name, sender, agent_id)
    try:
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise AttachmentMissing()
            message = await files.send(session_name, sender, agent_id, upload.filename, upload.read)
    except MultiPartException as exc:
        raise _Refused(400, f"the multipart body could not be read: {exc.message}") from None
    return MessagePublic.of(message)


class _Refused(AttachmentError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@router.get(
    "/api/sessions/{session_name}/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
async def download(
    session_name: SessionNamePath,
    attachment_id: AttachmentIdPath,
    _: SessionStreamAccess,
    files: Attachments,
) -> StreamingResponse:
    """The file, as it was sent, with the type its bytes showed."""
    attachment, body = await files.fetch(session_name, attachment_id)
    return _serve(attachment, body, attachment.content_type, attachment.filename)


@router.get(
    "/api/sessions/{session_name}/attachments/{attachment_id}/thumbnail",
    response_class=StreamingResponse,
    responses={200: {"content": {_THUMBNAIL_TYPE: {}}}, 404: {}},
)
async def thumbnail(
    session_name: SessionNamePath,
    attachment_id: AttachmentIdPath,
    _: SessionStreamAccess,
    files: Attachments,
) -> StreamingResponse:
    """An image's thumbnail (WebP, at most 320 pixels a side)."""
    attachment, body = await files.fetch(session_name, attachment_id, thumbnail=True)
    stem = attachment.filename.rsplit(".", 1)[0]
    return _serve(attachment, body, _THUMBNAIL_TYPE, f"{stem}.thumbnail.webp")


def _serve(
    attachment: Attachment, body: Any, content_type: str, filename: str
) -> StreamingResponse:
    disposition = "inline" if content_type in _INLINE_TYPES else "attachment"
    headers = {
        "Content-Disposition": content_disposition(disposition, filename),
        # The stored type, never a guess by the browser.
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=3600",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if content_type.startswith("image/"):
        # Opened on its own, a picture is a document with no rights on this site. Not for
        # PDFs: browsers' PDF viewers refuse to run in a sandboxed document; they keep a
        # PDF's scripts away from the site themselves.
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    return StreamingResponse(body, media_type=content_type, headers=headers)


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact name as RFC 5987
    ``filename*`` (UTF-8, percent-encoded)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_" for c in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
