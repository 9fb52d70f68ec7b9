"""What handlers need, as typed dependencies (``Annotated[..., Depends()]``).

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, a hop that cost every request (and every stream opened) measurably.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from infrastructure.bus.api import SseBus
from infrastructure.desk.monitor import DeskMonitor
from infrastructure.desk.service import DeskService
from infrastructure.sessions import SessionStore as SessionStoreProtocol
from infrastructure.web.fast_path import LAST_EVENT_ID_HEADER, LAST_EVENT_ID_QUERY


async def get_bus(request: Request) -> SseBus:
    bus: SseBus = request.app.state.bus
    return bus


async def get_store(request: Request) -> SessionStoreProtocol:
    store: SessionStoreProtocol = request.app.state.store
    return store


async def get_desk(request: Request) -> DeskService:
    desk: DeskService = request.app.state.desk
    return desk


async def get_presence(request: Request) -> DeskMonitor:
    presence: DeskMonitor = request.app.state.presence
    return presence


async def get_last_event_id(request: Request) -> str | None:
    """Where a resuming stream client is: ``Last-Event-ID``, else ``?last_event_id=``."""
    return request.headers.get(LAST_EVENT_ID_HEADER) or request.query_params.get(
        LAST_EVENT_ID_QUERY
    )


Bus = Annotated[SseBus, Depends(get_bus)]
Desk = Annotated[DeskService, Depends(get_desk)]
Presence = Annotated[DeskMonitor, Depends(get_presence)]
LastEventId = Annotated[str | None, Depends(get_last_event_id)]
SessionStore = Annotated[SessionStoreProtocol, Depends(get_store)]
