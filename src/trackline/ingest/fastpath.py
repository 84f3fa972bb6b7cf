"""The ingest fast path: an outermost ASGI layer that serves ``POST /api/v1/track`` and
``POST /api/v1/track/batch`` straight to their handlers, without the framework's middleware,
routing and dependency resolution, which cost more than the handlers themselves on small
requests. Everything else, and those paths with other methods, goes on to the app."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from trackline.api import JSON, error_response
from trackline.errors import TracklineError
from trackline.ingest.routes import HOT_PATHS

log = logging.getLogger(__name__)


async def serve_hot_path(services: Any, scope: Scope, receive: Receive, send: Send) -> bool:
    """Serve ``scope`` when it is a hot ingest request; False to let the app serve it."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    handler = HOT_PATHS.get(scope["path"])
    if handler is None:
        return False
    try:
        response = JSON(await handler(services, Request(scope, receive)))
    except TracklineError as exc:
        response = error_response(exc)
    except Exception:
        log.exception("ingest request failed")
        response = error_response(TracklineError("internal error; see the server log"))
    await response(scope, receive, send)
    return True
