"""The ASGI application, built by ``create_app(settings)``; nothing is created at import time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from trackline import __version__
from trackline.api import JSON, Services, error_response, install_error_handlers
from trackline.clock import Clock, SystemClock
from trackline.errors import ReadOnly, Unavailable
from trackline.ids import EventIds
from trackline.ingest.parsing import ParseThread
from trackline.ingest.writer import Writer
from trackline.settings import Settings
from trackline.storage.database import Database
from trackline.workspaces.auth import KeyCache

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    reads_only: bool = False,
) -> FastAPI:
    """A Trackline server for ``settings`` (read from the environment when omitted).
    ``reads_only``: the app of the read process (``trackline.serving``), which answers GET and
    refuses every other method with ``read_only``, and so runs no writer."""
    settings = settings or Settings()
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    svc = Services(
        settings=settings,
        db=db,
        writer=Writer(db, settings.writer),
        parsing=ParseThread(settings.parse_thread_bytes),
        clock=clock or SystemClock(),
        ids=EventIds(),
        keys=KeyCache(db, settings.key_cache_s),
        reads_only=reads_only,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await run_in_threadpool(db.migrate)
        if not reads_only:
            for warning in await run_in_threadpool(db.setting_warnings):
                log.warning(warning)
            svc.writer.start()
            svc.parsing.start()
        try:
            yield
        finally:
            await svc.parsing.stop()
            await run_in_threadpool(svc.writer.stop)  # drain: commit what was accepted
            await db.close_reads()
            db.dispose()

    app = _App(
        title="Trackline",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JSON,
        description="Self-hosted customer event platform: Track API, people, timelines.",
    )
    app.state.services = svc
    install_error_handlers(app)
    _routes(app)
    return app


class _App(FastAPI):
    """FastAPI with the ingest fast path in front of everything, the framework's own
    per-request work (telemetry checks, middleware, routing) included; in a read process,
    with the refusal of writes there instead."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from trackline.ingest.fastpath import serve_hot_path

        svc: Services = self.state.services
        if svc.reads_only:
            if scope["type"] == "http" and scope["method"] not in _READ_METHODS:
                refused = ReadOnly(
                    "this port answers only reads (GET); send writes to the main port"
                )
                await error_response(refused)(scope, receive, send)
                return
        elif await serve_hot_path(svc, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


_READ_METHODS = frozenset({"GET"})  # the API answers HEAD nowhere


def _routes(app: FastAPI) -> None:
    from trackline.catalog.routes import router as catalog
    from trackline.events.routes import router as events
    from trackline.failures.routes import router as failures
    from trackline.ingest.compat import router as compat
    from trackline.ingest.routes import router as ingest
    from trackline.people.routes import router as people

    for router in (ingest, compat, people, events, catalog, failures):
        app.include_router(router)

    @app.get("/health", tags=["health"])
    async def health() -> JSON:
        """200 when the database answers, 503 otherwise."""
        svc: Services = app.state.services
        if not await run_in_threadpool(svc.db.ping):
            raise Unavailable("the database cannot be reached")
        return JSON({"status": "ok"})
