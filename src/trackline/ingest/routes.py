"""Native Track API: ``POST /api/v1/track`` and ``POST /api/v1/track/batch``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from trackline.api import JSON, Services, services
from trackline.errors import InvalidInput
from trackline.ingest.body import read_body
from trackline.ingest.formats import native
from trackline.ingest.pipeline import Origin
from trackline.ingest.service import ingest
from trackline.workspaces.auth import authorize, secret_from_headers

router = APIRouter(tags=["track"])

_EVENT_SCHEMA = {
    "type": "object",
    "description": "One event (spec 3.2); synonyms: user_id/userId, anonymous_id/anonymousId, "
    "event_name/type, properties/data, messageId/insert_id/$insert_id.",
    "properties": {
        "external_id": {"type": "string"},
        "device_id": {"type": "string"},
        "event": {"type": "string"},
        "parameters": {"type": "object"},
        "timestamp": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
        "message_id": {"type": "string"},
        "group_id": {"type": "string"},
        "context": {"type": "object"},
    },
    "example": {
        "external_id": "user_123",
        "event": "purchase_completed",
        "parameters": {"order_id": "order_789", "amount": 99.99, "currency": "USD"},
    },
}


def _body_doc(schema: dict[str, object]) -> dict[str, object]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def handle_track(svc: Services, request: Request) -> dict[str, Any]:
    """``POST /api/v1/track``: one event; 200 once it is committed."""
    who = await authorize(svc.keys, secret_from_headers(request), "events:write")
    body = await read_body(request, limit=svc.settings.limits.request_bytes)
    origin = Origin(who.workspace_id, who.key_id, "api/v1/track")
    outcome = await ingest(svc, origin=origin, body=body, parse=native.parse_track)
    if outcome.parsed.errors:
        e = outcome.parsed.errors[0]
        raise InvalidInput(e.message, field=e.field, code=e.code)
    return {"success": True, "event_id": outcome.event_ids[0]}


async def handle_batch(svc: Services, request: Request) -> dict[str, Any]:
    """``POST /api/v1/track/batch``: valid events stored, invalid ones reported by index."""
    who = await authorize(svc.keys, secret_from_headers(request), "events:write")
    body = await read_body(request, limit=svc.settings.limits.request_bytes)
    origin = Origin(who.workspace_id, who.key_id, "api/v1/track/batch")
    outcome = await ingest(svc, origin=origin, body=body, parse=native.parse_batch)
    errors = [e.public() for e in outcome.parsed.errors]
    return {
        "success": not errors,
        "accepted": len(outcome.parsed.events),
        "event_ids": outcome.event_ids,
        "errors": errors,
    }


# The hot ingest paths: the fast path (``ingest/fastpath.py``) serves them without the
# framework's routing and dependency layers; the routes below document them in OpenAPI (and
# serve them to anything that calls the FastAPI router directly). Both call the same handlers.
HOT_PATHS = {"/api/v1/track": handle_track, "/api/v1/track/batch": handle_batch}


@router.post("/api/v1/track", openapi_extra=_body_doc(_EVENT_SCHEMA))
async def track(request: Request) -> JSON:
    """Track one event (scope ``events:write``). 200 once it is committed; a repeat of a
    message id answers with the original event id."""
    return JSON(await handle_track(services(request), request))


@router.post(
    "/api/v1/track/batch",
    openapi_extra=_body_doc(
        {"type": "object", "properties": {"events": {"type": "array", "items": _EVENT_SCHEMA}}}
    ),
)
async def track_batch(request: Request) -> JSON:
    """Track up to 1,000 events (scope ``events:write``). Valid events are stored; each invalid
    one is reported by index and kept in failed events."""
    return JSON(await handle_batch(services(request), request))
