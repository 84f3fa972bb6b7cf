"""Compatibility endpoints (spec 7): FlareLane's track call and the Segment HTTP Tracking API,
so existing clients switch by changing a host name and a key."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request

from trackline.api import JSON, require, services
from trackline.errors import InvalidInput, NotFound
from trackline.ingest.body import Body, read_body
from trackline.ingest.formats import flarelane, segment
from trackline.ingest.pipeline import Origin
from trackline.ingest.service import Parser, ingest
from trackline.workspaces.auth import Principal, authorize, secret_from_headers

router = APIRouter(tags=["compatibility"])

_FLARELANE_EXAMPLE = {
    "events": [
        {
            "subjectType": "user",
            "subjectId": "userid1",
            "type": "purchase",
            "data": {"productId": "123", "productName": "Product Name", "amount": 10000},
        }
    ]
}


@router.post(
    "/v1/projects/{project_id}/track",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": _FLARELANE_EXAMPLE}}}
    },
)
async def flarelane_track(
    project_id: str, request: Request, who: Principal = Depends(require("events:write"))
) -> JSON:
    """FlareLane: ``{"events": [{"subjectType", "subjectId", "type", "data", "timestamp"?}]}``;
    the project id is the key's workspace id."""
    if project_id != who.workspace_id:
        raise NotFound(f"no project {project_id}", field="project_id")
    svc = services(request)
    body = await read_body(request, limit=svc.settings.limits.request_bytes)
    origin = Origin(who.workspace_id, who.key_id, "v1/projects/track")
    outcome = await ingest(svc, origin=origin, body=body, parse=flarelane.parse)
    errors = [e.public() for e in outcome.parsed.errors]
    return JSON(
        {
            "success": not errors,
            "accepted": len(outcome.parsed.events),
            "event_ids": outcome.event_ids,
            "errors": errors,
        }
    )


async def _segment_principal(request: Request, body: Body) -> Principal:
    """Basic auth with the key as user name, Bearer, or ``writeKey`` in the body."""
    secret = secret_from_headers(request, allow_basic=True)
    if secret is None and not body.too_large:
        try:
            data = orjson.loads(body.data)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("writeKey"), str):
            secret = data["writeKey"]
    return await authorize(services(request).keys, secret, "events:write")


async def _segment(request: Request, parse: Parser, source: str, *, single: bool) -> JSON:
    svc = services(request)
    body = await read_body(request, limit=svc.settings.limits.request_bytes)
    who = await _segment_principal(request, body)
    origin = Origin(who.workspace_id, who.key_id, source)
    outcome = await ingest(svc, origin=origin, body=body, parse=parse)
    errors = outcome.parsed.errors
    if single and errors:
        raise InvalidInput(errors[0].message, field=errors[0].field, code=errors[0].code)
    if errors:
        return JSON({"success": False, "errors": [e.public() for e in errors]})
    return JSON({"success": True})


def _single(kind: str) -> None:
    async def endpoint(request: Request) -> JSON:
        return await _segment(request, segment.parse_one(kind), f"v1/{kind}", single=True)

    endpoint.__name__ = f"segment_{kind}"
    endpoint.__doc__ = f"Segment ``{kind}`` call (HTTP Basic with the key as user, or writeKey)."
    router.add_api_route(f"/v1/{kind}", endpoint, methods=["POST"])


for _kind in ("track", "identify", "group", "alias", "page", "screen"):
    _single(_kind)


@router.post("/v1/batch")
async def segment_batch(request: Request) -> JSON:
    """Segment ``batch``: ``{"batch": [messages], "context"?, "sentAt"?, "writeKey"?}``."""
    return await _segment(request, segment.parse_batch, "v1/batch", single=False)


@router.post("/v1/import")
async def segment_import(request: Request) -> JSON:
    """Segment ``import``: the same as ``/v1/batch``."""
    return await _segment(request, segment.parse_batch, "v1/batch", single=False)
