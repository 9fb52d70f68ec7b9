"""The app factory both services are built with.

The lifespan owns every resource: the process's container (the Redis connections,
the SSE bus, the session store, the limits; ``infrastructure/container.py``), the HTTP
client of the bot. On SIGTERM the
open streams are ended first, each with a ``retry:`` hint, so that uvicorn's
graceful shutdown is not held up by them and browsers reconnect elsewhere.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from infrastructure.auth.logging import install_log_redaction
from infrastructure.auth.tokens import check_auth_secret
from infrastructure.bootstrap.redis_sse import init_redis_sse, shutdown_redis_sse
from infrastructure.bus.api import SseBus
from infrastructure.config import Settings, get_settings
from infrastructure.container import build_container
from infrastructure.metrics import build_registry
from infrastructure.record.metrics import RecordCollector
from infrastructure.record.service import archiver_sources, open_record
from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.web.attachment_routes import router as attachment_router
from infrastructure.web.attachment_routes import upload_allowance
from infrastructure.web.body_limit import BodyLimitMiddleware
from infrastructure.web.errors import install_error_handlers
from infrastructure.web.fast_path import FastRoute, ServiceApp
from infrastructure.web.record_routes import router as record_router
from infrastructure.web.shared_routes import fast_routes as shared_fast_routes
from infrastructure.web.shared_routes import router as shared_router

logger = logging.getLogger(__name__)

#: What both pages share (the stream client, the API client), served at /shared.
SHARED_STATIC_DIR = Path(__file__).parent / "static"

#: Extra startup/shutdown of a service: receives the app, yields while it serves.
ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    settings: Settings | None = None,
    static_dir: Path | None = None,
    extra_lifespan: ServiceLifespan | None = None,
    fast_routes: Sequence[FastRoute] = (),
    archiver: bool = False,
) -> ServiceApp:
    """``archiver``: this service runs the record's archiver (``RECORD_ARCHIVER=embedded``);
    in memory mode every service archives its own sessions."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()
        check_auth_secret(settings)  # refuse to start with a secret too short to sign with
        if settings.uses_development_secret:
            logger.warning(
                "!!! %s is running with the built-in development AUTH_SECRET: anyone can "
                "forge tokens. Set AUTH_SECRET (make run writes a random one to .env). !!!",
                service,
            )
        # Every shared resource, from one function (infrastructure/container.py); the
        # process's container, which the seed's init/shutdown functions start and close.
        container = build_container(settings, service)
        await init_redis_sse(container=container)
        for key, value in container.state().items():
            setattr(app.state, key, value)
        # The record (SQL): migrations on start; the archiver where this process runs one.
        store = container.store
        log = store.record if isinstance(store, InMemorySessionStore) else None
        redis_mode = container.bus.manager is not None
        archives = archiver or not redis_mode
        source, thread_source = (
            archiver_sources(settings, redis_mode, log) if archives else (None, None)
        )
        app.state.record = await open_record(settings, source, thread_source)
        restore = _end_streams_on_signal(container.bus)
        _tune_gc(settings)
        try:
            if extra_lifespan is None:
                yield
            else:
                async with extra_lifespan(app):
                    yield
        finally:
            restore()
            await app.state.record.stop()
            await shutdown_redis_sse(container)

    app = ServiceApp(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.fast_routes = [*shared_fast_routes, *fast_routes]
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = build_registry(lambda: app.state.bus, service, app.fast_outcomes)
    app.state.metrics.register(RecordCollector(lambda: getattr(app.state, "record", None), service))
    install_error_handlers(app)
    app.include_router(shared_router)
    app.include_router(record_router)
    app.include_router(attachment_router)
    for router in routers:
        app.include_router(router)
    if static_dir is not None:
        app.mount("/static", StaticFiles(directory=static_dir), name="static")
    app.mount("/shared", StaticFiles(directory=SHARED_STATIC_DIR), name="shared")
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.MAX_BODY_BYTES,
        allowances=(upload_allowance(settings.ATTACHMENT_MAX_BYTES),),
    )
    app.seal()  # middleware added from here on sees every request, the fast path's too
    return app


def _end_streams_on_signal(bus: SseBus) -> Callable[[], None]:
    """Chain a handler in front of uvicorn's for SIGTERM/SIGINT.

    uvicorn waits for open connections to finish *before* it runs the lifespan
    shutdown, and a stream never finishes by itself: end them here, first.
    """
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def begin_shutdown() -> None:
        bus.accepting = False
        bus.hub.close_all("shutdown")

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            handler = signal.getsignal(sig)
        except ValueError:  # not the main thread (an in-process test server)
            continue
        if not callable(handler):
            continue
        previous[sig] = handler

        def chained(signum: int, frame: FrameType | None, _next: Any = handler) -> None:
            loop.call_soon_threadsafe(begin_shutdown)
            _next(signum, frame)

        try:
            signal.signal(sig, chained)
        except ValueError:
            previous.pop(sig, None)

    def restore() -> None:
        for sig, handler in previous.items():
            with suppress(ValueError):
                signal.signal(sig, handler)

    return restore


def _tune_gc(settings: Settings) -> None:
    """Fewer, cheaper garbage collections on a server that holds many long-lived objects.

    What exists once the app has started (modules, the app, settings) is frozen out of
    every later collection, and the youngest generation is collected less often
    (``GC_GEN0_THRESHOLD``); measured with ``make bench`` (c): bench/README.md.
    """
    if settings.GC_GEN0_THRESHOLD:
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(settings.GC_GEN0_THRESHOLD, gen1, gen2)
