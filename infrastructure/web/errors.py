"""Errors the use cases raise, as HTTP answers: a clear 4xx, never a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from infrastructure.attachments.models import AttachmentError
from infrastructure.bus.cursor import InvalidCursor
from infrastructure.events import InvalidPayload, InvalidTarget
from infrastructure.record.queries import InvalidRecordCursor
from infrastructure.record.service import RecordUnavailable
from infrastructure.sessions import (
    NotHolder,
    SessionConflict,
    SessionHeldByAnother,
    SessionNotFound,
)

logger = logging.getLogger(__name__)


def unprocessable(message: str, *loc: str) -> HTTPException:
    """A 422 in the shape FastAPI documents for every 422 (``HTTPValidationError``), so
    that a client handles ours and the framework's alike."""
    return HTTPException(
        422, detail=[{"type": "value_error", "loc": list(loc or ("body",)), "msg": message}]
    )


def _answer(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return _answer(404, str(exc))

    async def not_holder(_: Request, exc: Exception) -> JSONResponse:
        return _answer(403, str(exc))

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return _answer(409, str(exc))

    async def held(_: Request, exc: Exception) -> JSONResponse:
        # The holder as a field too: a page shows "taken by <agent>" without parsing text.
        holder = exc.agent_id if isinstance(exc, SessionHeldByAnother) else None
        return JSONResponse({"detail": str(exc), "holder": holder}, status_code=409)

    async def bad_target(_: Request, exc: Exception) -> JSONResponse:
        error = unprocessable(str(exc))
        return JSONResponse({"detail": error.detail}, status_code=422)

    async def attachment_refused(_: Request, exc: Exception) -> JSONResponse:
        return _answer(exc.status if isinstance(exc, AttachmentError) else 400, str(exc))

    async def bad_cursor(_: Request, exc: Exception) -> JSONResponse:
        return _answer(400, str(exc))

    async def storage_down(_: Request, exc: Exception) -> JSONResponse:
        logger.warning("storage unavailable: %r", exc)
        return _answer(503, "storage temporarily unavailable", {"Retry-After": "2"})

    app.add_exception_handler(SessionNotFound, not_found)
    app.add_exception_handler(NotHolder, not_holder)
    app.add_exception_handler(SessionConflict, conflict)
    app.add_exception_handler(SessionHeldByAnother, held)
    app.add_exception_handler(InvalidTarget, bad_target)
    app.add_exception_handler(InvalidPayload, bad_target)
    app.add_exception_handler(InvalidCursor, bad_cursor)
    app.add_exception_handler(AttachmentError, attachment_refused)
    app.add_exception_handler(RedisError, storage_down)
    app.add_exception_handler(ConnectionError, storage_down)
    # The record's database (SQL): down, unreachable, or not migrated yet.
    app.add_exception_handler(InvalidRecordCursor, bad_cursor)
    # asyncpg's refused connection comes through unwrapped: an OSError (a TimeoutError too).
    for error in (RecordUnavailable, OperationalError, InterfaceError, PoolTimeout, OSError):
        app.add_exception_handler(error, storage_down)
