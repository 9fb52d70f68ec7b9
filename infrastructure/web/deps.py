"""What handlers need, as typed dependencies (``Annotated[..., Depends()]``).

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, a hop that cost every request (and every stream opened) measurably.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from infrastructure.bootstrap.sse import SseBus
from infrastructure.sessions import SessionStore as SessionStoreProtocol


async def get_bus(request: Request) -> SseBus:
    bus: SseBus = request.app.state.bus
    return bus


async def get_store(request: Request) -> SessionStoreProtocol:
    store: SessionStoreProtocol = request.app.state.store
    return store


Bus = Annotated[SseBus, Depends(get_bus)]
SessionStore = Annotated[SessionStoreProtocol, Depends(get_store)]
