"""What every route shares: the JSON response, the services, auth dependencies, error handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trackline.clock import Clock
from trackline.errors import InvalidInput, TracklineError
from trackline.ids import EventIds
from trackline.ingest.parsing import ParseThread
from trackline.ingest.writer import Writer
from trackline.settings import Settings
from trackline.storage.database import Database
from trackline.workspaces.auth import KeyCache, Principal, authorize, secret_from_headers


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass
class Services:
    """Everything a request needs, built once per app by ``create_app``."""

    settings: Settings
    db: Database
    writer: Writer
    parsing: ParseThread
    clock: Clock
    ids: EventIds
    keys: KeyCache
    reads_only: bool = False  # the read process of ``serve --read-port``


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def require(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller's key (Bearer), which must hold ``scope`` (or ``admin``)."""

    async def dependency(request: Request) -> Principal:
        return await authorize(services(request).keys, secret_from_headers(request), scope)

    return dependency


def error_response(exc: TracklineError) -> JSON:
    return JSON(exc.body(), status_code=exc.status, headers=exc.headers())


def install_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, leaves in the one shape of spec 3.4."""

    async def domain(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, TracklineError)
        return error_response(exc)

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
        return error_response(
            InvalidInput(first.get("msg", "invalid"), field=".".join(loc) or None)
        )

    async def http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        err = TracklineError(str(exc.detail), code=codes.get(exc.status_code, "http_error"))
        err.status = exc.status_code
        response = error_response(err)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    async def unexpected(_: Request, exc: Exception) -> Response:
        return error_response(TracklineError("internal error; see the server log"))

    app.add_exception_handler(TracklineError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)
